"""Few-shot examples for evaluations on one's own data: other rows of the data, with their ground truth.

Each row is asked after ``k`` solved examples taken from the rest of the data (never the row
itself), in one seeded order, so the same ``(data, k, seed)`` always gives the same prompts and a
prefix the endpoint can cache. A chat model gets them as earlier user/assistant turns; a text
model as ``question\\nanswer`` blocks before the question.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hyouka.evaluation.data import EvalRow
from hyouka.models.base import Message

__all__ = ["FewshotError", "fewshot_messages", "fewshot_prefix", "pick_fewshot"]


class FewshotError(ValueError):
    """The data cannot give the few-shot examples asked for."""


def _answer(row: EvalRow) -> str | None:
    truth = row.ground_truth
    if isinstance(truth, list):
        return str(truth[0]) if truth else None
    return truth


def pick_fewshot(rows: Sequence[EvalRow], k: int, seed: int) -> dict[int, list[EvalRow]]:
    """For each row (by index), ``k`` other rows with inputs and a ground truth, in a seeded order."""
    if k < 0:
        raise FewshotError(f"num_fewshot must be 0 or more, got {k}")
    if k == 0:
        return {row.index: [] for row in rows}
    pool = [r for r in rows if r.inputs and _answer(r)]
    if len(pool) < k + 1:
        raise FewshotError(f"{k}-shot needs at least {k + 1} rows with inputs and a ground truth "
                           f"(each row's examples are other rows); the data has {len(pool)}")
    order = pool[:]
    random.Random(seed).shuffle(order)
    return {row.index: [r for r in order if r.index != row.index][:k] for row in rows}


def fewshot_messages(shots: Sequence[EvalRow]) -> tuple[Message, ...]:
    """The examples as earlier chat turns."""
    out: list[Message] = []
    for shot in shots:
        out += [Message("user", shot.inputs or ""), Message("assistant", _answer(shot) or "")]
    return tuple(out)


def fewshot_prefix(shots: Sequence[EvalRow]) -> str:
    """The examples as text before the question."""
    return "".join(f"{shot.inputs}\n{_answer(shot)}\n\n" for shot in shots)
