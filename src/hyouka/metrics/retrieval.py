"""Retrieval metrics: hit@k, recall@k, precision@k, MRR, nDCG@k, on ranked ids against relevant ids.

A prediction is the list of retrieved ids, best first (duplicates allowed: several chunks of one
document); a reference is the relevant ids. Definitions and edge cases follow MLflow's
retriever metrics (``mlflow.metrics.precision_at_k``, ``recall_at_k``, ``ndcg_at_k``), whose names
are accepted too:

- ``precision_at_K``: relevant ids among the first ``min(K, n retrieved)`` / that number; 0 if none retrieved;
- ``recall_at_K``: distinct relevant ids in the first K / relevant ids; with no relevant ids, 1 if nothing
  was retrieved, else 0;
- ``ndcg_at_K``: binary relevance, a repeated relevant id counting as another relevant item, the ideal
  ranking over those items (as MLflow's use of ``sklearn.metrics.ndcg_score``); 1 when both lists are
  empty, 0 when one is;
- ``hit_at_K``: 1 if any of the first K is relevant; ``mrr`` / ``mrr_at_K``: 1 / the rank of the
  first relevant id (in all, or the first K), 0 if none.

Names: ``recall_at_5`` or ``recall@5``; ``recall_at_k`` means the run's ``k`` (see :func:`resolve`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any

__all__ = ["KINDS", "describe", "hit_at_k", "is_retrieval_metric", "mrr", "ndcg_at_k", "precision_at_k",
           "recall_at_k", "resolve", "score_function"]

KINDS = ("hit", "recall", "precision", "ndcg", "mrr")
_NAME = re.compile(r"^(hit|hit_rate|recall|precision|ndcg|mrr)(?:(?:_at_|@)(\d+|k))?$")
_DESCRIPTIONS = {
    "hit": "1 if any of the first {k} retrieved is relevant",
    "recall": "share of the relevant ids among the first {k} retrieved (MLflow's recall_at_k)",
    "precision": "share of the first {k} retrieved that are relevant (MLflow's precision_at_k)",
    "ndcg": "nDCG of the first {k} retrieved, binary relevance (MLflow's ndcg_at_k)",
    "mrr": "1 / rank of the first relevant id{within}",
}

Ids = Sequence[Hashable]


def precision_at_k(retrieved: Ids, relevant: Ids, k: int) -> float:
    top = list(retrieved)[:k]
    gold = set(relevant)
    return sum(1 for d in top if d in gold) / len(top) if top else 0.0


def recall_at_k(retrieved: Ids, relevant: Ids, k: int) -> float:
    gold = set(relevant)
    top = set(list(retrieved)[:k])
    if gold:
        return len(gold & top) / len(gold)
    return 1.0 if not top else 0.0


def hit_at_k(retrieved: Ids, relevant: Ids, k: int) -> float:
    gold = set(relevant)
    return float(any(d in gold for d in list(retrieved)[:k]))


def mrr(retrieved: Ids, relevant: Ids, k: int | None = None) -> float:
    gold = set(relevant)
    for rank, d in enumerate(list(retrieved)[:k] if k else retrieved, start=1):
        if d in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Ids, relevant: Ids, k: int) -> float:
    top = list(retrieved)[:k]
    gold = set(relevant)
    if not top and not gold:
        return 1.0
    if not top or not gold:
        return 0.0
    gains = [1.0 if d in gold else 0.0 for d in top]
    repeats = sum(gains) - len(gold & set(top))  # a relevant id retrieved again is one more relevant item
    n_relevant = len(gold) + int(repeats)
    dcg = math.fsum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = math.fsum(1.0 / math.log2(i + 2) for i in range(min(n_relevant, len(top))))
    return dcg / ideal if ideal > 0 else 0.0


_FUNCS: dict[str, Callable[[Ids, Ids, int], float]] = {
    "hit": hit_at_k, "recall": recall_at_k, "precision": precision_at_k, "ndcg": ndcg_at_k, "mrr": mrr,
}


def _parse(name: str) -> tuple[str, str | None] | None:
    match = _NAME.match(name)
    if match is None:
        return None
    kind = "hit" if match.group(1) == "hit_rate" else match.group(1)
    k = match.group(2)
    if k is None and kind != "mrr":
        return None  # "recall" alone is not a retrieval metric's name (it is a classification word)
    return kind, k


def is_retrieval_metric(name: str) -> bool:
    """Whether ``name`` names a retrieval metric (``recall@5``, ``ndcg_at_k``, ``mrr``…)."""
    return _parse(str(name)) is not None


def resolve(name: str, k: int | None = None) -> str:
    """The canonical name (``recall_at_5``, ``mrr``) of a retrieval metric; ``_at_k`` / ``@k`` take ``k``."""
    parsed = _parse(str(name))
    if parsed is None:
        raise ValueError(f"{name!r} is not a retrieval metric; use e.g. recall_at_5, recall@5, ndcg_at_k, mrr")
    kind, at = parsed
    if at == "k":
        if k is None:
            raise ValueError(f"{name} needs the number of retrieved chunks k (e.g. k=4), or name it as {kind}_at_4")
        at = str(k)
    if at is not None and int(at) < 1:
        raise ValueError(f"{name}: k must be at least 1")
    return kind if at is None else f"{kind}_at_{int(at)}"


def describe(name: str) -> str | None:
    """A canonical retrieval metric's description, or ``None`` if ``name`` is none."""
    parsed = _parse(name)
    if parsed is None or parsed[1] == "k":
        return None
    kind, at = parsed
    within = f" among the first {at}" if at else ""
    return _DESCRIPTIONS[kind].format(k=at, within=within)


def score_function(name: str) -> Callable[[Any, Any], float] | None:
    """``f(retrieved, relevant)`` for a canonical retrieval metric name; ``None`` if ``name`` is none.

    A ``None`` prediction (nothing retrieved: the retrieval failed) scores as an empty list.
    """
    parsed = _parse(name)
    if parsed is None or parsed[1] == "k":
        return None
    kind, at = parsed
    func = _FUNCS[kind]
    k = int(at) if at is not None else None

    def score(retrieved: Any, relevant: Any) -> float:
        return func(list(retrieved or []), list(relevant or []), k)  # type: ignore[arg-type]

    return score
