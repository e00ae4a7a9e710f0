"""Answer matching for extractive and short-answer QA (JSQuAD style)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hyouka.metrics.normalize import normalize_answer

__all__ = ["char_f1", "exact_match"]


def _gold_list(golds: Sequence[str] | str) -> list[str]:
    gold_list = [golds] if isinstance(golds, str) else list(golds)
    if not gold_list:
        raise ValueError("at least one gold answer is required")
    return gold_list


def exact_match(prediction: str | None, golds: Sequence[str] | str) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer, else 0.0.

    ``golds`` is one answer or several acceptable ones; a ``None`` prediction scores 0.0.
    """
    gold_list = _gold_list(golds)
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(gold) for gold in gold_list))


def _char_f1_single(pred: str, gold: str) -> float:
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(gold)
    return 2 * precision * recall / (precision + recall)


def char_f1(prediction: str | None, golds: Sequence[str] | str) -> float:
    """Character-level F1 between normalised strings, the maximum over gold answers.

    Characters are compared as a bag (SQuAD's token F1 with characters as tokens), as JGLUE's
    JSQuAD evaluation does. Two empty strings score 1.0, one empty string 0.0; ``None`` scores 0.0.
    """
    gold_list = _gold_list(golds)
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return max(_char_f1_single(pred, normalize_answer(gold)) for gold in gold_list)
