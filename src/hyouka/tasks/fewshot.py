"""Few-shot samplers: which examples of the few-shot split go into each prompt.

Each sampler is told the documents' order (their position in the evaluation split), so the
examples a document gets do not depend on which documents are built first (a resumed run
builds only the missing ones).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from hyouka.tasks.loaders import DataError

Doc = dict[str, Any]

LM_EVAL_DEFAULT_SEED = 1234  # lm-eval's fewshot_random_seed
LLM_JP_EVAL_SHUFFLE_SEED = 42  # llm-jp-eval shuffles the training file with random.seed(42)


def _same(a: Doc, b: Doc) -> bool:
    return a is b or a.get("_id") == b.get("_id")


class FewshotSampler:
    """Draws ``k`` examples for the document at ``position`` of the evaluation split."""

    draws_spare = False  # draws k + 1 whatever the split, so needs that many documents

    def __init__(self, pool: Sequence[Doc], k: int, *, pool_is_eval: bool, seed: int, task: str) -> None:
        self.pool = list(pool)
        self.k = k
        self.pool_is_eval = pool_is_eval  # examples must then skip the scored document
        self.seed = seed
        self.task = task
        needed = k + 1 if pool_is_eval or self.draws_spare else k
        if k > 0 and len(self.pool) < needed:
            raise DataError(f"task {task}: {k}-shot needs at least {needed} few-shot documents, got {len(self.pool)}")

    def sample(self, doc: Doc, position: int) -> list[Doc]:
        raise NotImplementedError


class FixedSampler(FewshotSampler):
    """hyouka's default: ``k`` examples drawn once (one spare in case the document is among them)."""

    draws_spare = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._picks: list[int] | None = None

    def sample(self, doc: Doc, position: int) -> list[Doc]:
        if self.k <= 0:
            return []
        if self._picks is None:
            self._picks = random.Random(self.seed).sample(range(len(self.pool)), self.k + 1)
        return [self.pool[i] for i in self._picks if not _same(self.pool[i], doc)][: self.k]


class FirstNSampler(FewshotSampler):
    """The first ``k`` documents of the split (skipping the scored one when the split is the evaluated one)."""

    def sample(self, doc: Doc, position: int) -> list[Doc]:
        pool = [d for d in self.pool if not _same(d, doc)] if self.pool_is_eval else self.pool
        return pool[: self.k]


class LlmJpEvalSampler(FirstNSampler):
    """llm-jp-eval: its ``train`` split is the training file shuffled with ``random.seed(42)``; the first ``k``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        random.Random(LLM_JP_EVAL_SHUFFLE_SEED).shuffle(self.pool)


class LmEvalSampler(FewshotSampler):
    """lm-eval's default ``ContextSampler``: one ``Random(seed)`` draws for each document in order.

    Document ``i`` gets ``rnd.sample(pool, k)`` after the draws of documents ``0..i-1``; when the
    few-shot split is the evaluated one it draws ``k + 1`` and drops the document itself, as
    lm-eval does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rnd = random.Random(self.seed)
        self._draws: list[list[int]] = []

    def _draw(self) -> list[int]:
        n = self.k + 1 if self.pool_is_eval else self.k
        return self._rnd.sample(range(len(self.pool)), n)

    def sample(self, doc: Doc, position: int) -> list[Doc]:
        if self.k <= 0:
            return []
        while len(self._draws) <= position:
            self._draws.append(self._draw())
        chosen = [self.pool[i] for i in self._draws[position]]
        if self.pool_is_eval:
            chosen = [d for d in chosen if not _same(d, doc)][: self.k]
        return chosen


SAMPLERS: dict[str, type[FewshotSampler]] = {
    "fixed": FixedSampler,
    "first_n": FirstNSampler,
    "lm-eval": LmEvalSampler,
    "llm-jp-eval": LlmJpEvalSampler,
}


def make_sampler(
    name: str, pool: Sequence[Doc], k: int, *, pool_is_eval: bool, seed: int, task: str
) -> FewshotSampler:
    try:
        cls = SAMPLERS[name]
    except KeyError:
        raise DataError(f"task {task}: unknown few-shot sampler {name!r}; known: {', '.join(SAMPLERS)}") from None
    return cls(pool, k, pool_is_eval=pool_is_eval, seed=seed, task=task)
