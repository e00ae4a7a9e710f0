"""Classification statistics: accuracy, macro-F1, balanced accuracy, and MLflow's precision/recall/F1.

A prediction of ``None`` (a format error: the model's answer fell outside the label set) is
scored as wrong. So is any other prediction outside ``labels``: it adds a false negative to
the gold class and a false positive to no class.

The ``*_codes`` kernels work on integer-coded arrays along the last axis, so the bootstrap can
evaluate a thousand resamples in one call.

``precision_score``, ``recall_score`` and ``f1_score`` are MLflow's classifier-evaluator metrics
(scikit-learn's functions as MLflow calls them): the labels are the distinct gold labels and
predictions, sorted, unless the task gives its label set; with two labels they are the binary
scores of the positive label, the last one sorted (MLflow's default ``pos_label``); with more,
``average="weighted"`` (per-label scores weighted by gold counts). A label never predicted has
precision 0, as scikit-learn's ``zero_division`` default gives.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "INVALID_CODE",
    "MLFLOW_SCORES",
    "accuracy",
    "accuracy_codes",
    "balanced_accuracy",
    "balanced_accuracy_codes",
    "encode_labels",
    "macro_f1",
    "macro_f1_codes",
    "mlflow_labels",
    "mlflow_score_codes",
]

INVALID_CODE = -1
"""Code of a prediction that is ``None`` or outside the label set."""


def _check_lengths(preds: Sequence[Any], golds: Sequence[Any]) -> None:
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions but {len(golds)} gold labels")


def encode_labels(
    preds: Sequence[Any], golds: Sequence[Any], labels: Sequence[Hashable] | None = None
) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
    """Map labels to integer codes ``0..k-1``.

    Returns ``(pred_codes, gold_codes, labels)``. Predictions that are ``None``, unhashable or not
    in ``labels`` get ``INVALID_CODE``. ``labels`` defaults to the distinct gold labels in order of
    first appearance; a gold label outside an explicit ``labels`` raises ``ValueError``.
    """
    _check_lengths(preds, golds)
    if any(g is None for g in golds):
        raise ValueError("gold labels must not be None")
    label_list = list(dict.fromkeys(golds)) if labels is None else list(dict.fromkeys(labels))
    index = {label: i for i, label in enumerate(label_list)}
    try:
        gold_codes = np.fromiter((index[g] for g in golds), dtype=np.int64, count=len(golds))
    except KeyError as exc:
        raise ValueError(f"gold label {exc.args[0]!r} is not in labels {label_list!r}") from None

    def code(pred: Any) -> int:
        if pred is None:
            return INVALID_CODE
        try:
            return index.get(pred, INVALID_CODE)
        except TypeError:  # unhashable prediction
            return INVALID_CODE

    pred_codes = np.fromiter((code(p) for p in preds), dtype=np.int64, count=len(preds))
    return pred_codes, gold_codes, label_list


def _class_counts(
    pred_codes: np.ndarray, gold_codes: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (true positives, predicted count, gold count), shape ``(..., n_classes)``."""
    pred = np.asarray(pred_codes)
    gold = np.asarray(gold_codes)
    if pred.shape != gold.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {gold.shape}")
    lead = pred.shape[:-1]
    n = pred.shape[-1]
    rows = int(np.prod(lead, dtype=np.int64))
    pred2 = pred.reshape(rows, n)
    gold2 = gold.reshape(rows, n)
    offsets = (np.arange(rows, dtype=np.int64) * n_classes)[:, None]
    size = rows * n_classes
    gold_keys = gold2 + offsets
    gold_count = np.bincount(gold_keys.ravel(), minlength=size)
    valid = pred2 >= 0
    pred_count = np.bincount((pred2 + offsets)[valid], minlength=size)
    true_pos = np.bincount(gold_keys[pred2 == gold2], minlength=size)
    shape = (*lead, n_classes)
    return true_pos.reshape(shape), pred_count.reshape(shape), gold_count.reshape(shape)


def accuracy_codes(pred_codes: np.ndarray, gold_codes: np.ndarray) -> np.ndarray:
    """Accuracy along the last axis (NaN where it is empty)."""
    pred = np.asarray(pred_codes)
    gold = np.asarray(gold_codes)
    if pred.shape[-1] == 0:
        return np.full(pred.shape[:-1], np.nan)
    return (pred == gold).mean(axis=-1)


def macro_f1_codes(pred_codes: np.ndarray, gold_codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Unweighted mean of per-class F1 along the last axis.

    As scikit-learn does, a class with no gold and no predicted instance has F1 = 0.
    """
    true_pos, pred_count, gold_count = _class_counts(pred_codes, gold_codes, n_classes)
    denom = pred_count + gold_count  # = 2tp + fp + fn
    f1 = np.divide(2.0 * true_pos, denom, out=np.zeros(denom.shape), where=denom > 0)
    return f1.mean(axis=-1)


def balanced_accuracy_codes(pred_codes: np.ndarray, gold_codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean per-class recall over the classes present in the gold labels, along the last axis."""
    true_pos, _, gold_count = _class_counts(pred_codes, gold_codes, n_classes)
    present = gold_count > 0
    recall = np.divide(true_pos, gold_count, out=np.zeros(gold_count.shape), where=present)
    n_present = present.sum(axis=-1)
    return np.divide(recall.sum(axis=-1), n_present, out=np.full(n_present.shape, np.nan), where=n_present > 0)


def accuracy(preds: Sequence[Any], golds: Sequence[Any]) -> float:
    """Share of predictions equal to their gold label (``None`` is wrong). NaN for empty input."""
    _check_lengths(preds, golds)
    if len(golds) == 0:
        return float("nan")
    return sum(p is not None and bool(p == g) for p, g in zip(preds, golds, strict=True)) / len(golds)


def macro_f1(preds: Sequence[Any], golds: Sequence[Any], labels: Sequence[Hashable] | None = None) -> float:
    """Macro-averaged F1 over ``labels``.

    ``labels`` defaults to the distinct gold labels; pass the task's full label set so that a class
    missing from this subset still counts (with F1 = 0). NaN for empty input.
    """
    pred_codes, gold_codes, label_list = encode_labels(preds, golds, labels)
    if len(golds) == 0:
        return float("nan")
    return float(macro_f1_codes(pred_codes, gold_codes, len(label_list)))


def balanced_accuracy(preds: Sequence[Any], golds: Sequence[Any], labels: Sequence[Hashable] | None = None) -> float:
    """Mean recall over the gold classes present (scikit-learn's ``balanced_accuracy_score``).

    NaN for empty input.
    """
    pred_codes, gold_codes, label_list = encode_labels(preds, golds, labels)
    if len(golds) == 0:
        return float("nan")
    return float(balanced_accuracy_codes(pred_codes, gold_codes, len(label_list)))


MLFLOW_SCORES = ("precision_score", "recall_score", "f1_score")


def mlflow_labels(preds: Sequence[Any], golds: Sequence[Any]) -> list[Hashable]:
    """MLflow's inferred label list: the distinct golds and predictions (``None`` left out), sorted."""
    found: set[Hashable] = set()
    for value in (*golds, *preds):
        if value is None:
            continue
        try:
            found.add(value)
        except TypeError:  # an unhashable prediction is no label (it scores as wrong)
            continue
    try:
        return sorted(found)  # type: ignore[type-var]
    except TypeError:
        listed = sorted(map(repr, found))
        raise ValueError(f"labels of mixed types cannot be ordered as MLflow orders them: {listed}") from None


def mlflow_score_codes(pred_codes: np.ndarray, gold_codes: np.ndarray, n_classes: int, score: str) -> np.ndarray:
    """MLflow's ``precision_score`` / ``recall_score`` / ``f1_score`` along the last axis (labels coded in order)."""
    true_pos, pred_count, gold_count = _class_counts(pred_codes, gold_codes, n_classes)
    denom = {"precision_score": pred_count, "recall_score": gold_count, "f1_score": pred_count + gold_count}[score]
    numerator = 2.0 * true_pos if score == "f1_score" else true_pos.astype(float)
    per_label = np.divide(numerator, denom, out=np.zeros(denom.shape), where=denom > 0)
    if n_classes == 2:
        return per_label[..., 1]
    support = gold_count.sum(axis=-1, keepdims=True)
    weights = np.divide(gold_count, support, out=np.zeros(gold_count.shape), where=support > 0)
    return (per_label * weights).sum(axis=-1)
