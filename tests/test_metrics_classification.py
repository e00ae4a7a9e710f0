"""Accuracy, macro-F1 and balanced accuracy, with None as a format error."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from hyouka.metrics.classification import (
    INVALID_CODE,
    accuracy,
    balanced_accuracy,
    encode_labels,
    macro_f1,
    macro_f1_codes,
)

GOLDS = ["a", "a", "b", "b", "c"]
PREDS = ["a", "b", "b", None, "c"]


def _reference_macro_f1(preds: list, golds: list, labels: list) -> float:
    """Per-class precision/recall from their definitions; F1 = 0 when undefined (scikit-learn)."""
    f1s = []
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(preds, golds, strict=True))
        fp = sum(p == label and g != label for p, g in zip(preds, golds, strict=True))
        fn = sum(p != label and g == label for p, g in zip(preds, golds, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1s) / len(f1s)


def _reference_balanced_accuracy(preds: list, golds: list) -> float:
    recalls = []
    for label in dict.fromkeys(golds):
        idx = [i for i, g in enumerate(golds) if g == label]
        recalls.append(sum(preds[i] == label for i in idx) / len(idx))
    return sum(recalls) / len(recalls)


def test_hand_worked_example() -> None:
    # a: P=1 R=1/2 F1=2/3; b: P=1/2 R=1/2 F1=1/2; c: F1=1
    assert accuracy(PREDS, GOLDS) == pytest.approx(0.6)
    assert macro_f1(PREDS, GOLDS) == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert balanced_accuracy(PREDS, GOLDS) == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_label_set_changes_macro_f1_but_not_balanced_accuracy() -> None:
    labels = ["a", "b", "c", "d"]  # d never occurs: F1 0 as in scikit-learn; recall not defined
    assert macro_f1(PREDS, GOLDS, labels) == pytest.approx((2 / 3 + 0.5 + 1 + 0) / 4)
    assert balanced_accuracy(PREDS, GOLDS, labels) == pytest.approx(2 / 3)


def test_prediction_outside_labels_is_wrong_not_a_new_class() -> None:
    with_none = macro_f1(["a", None, "b"], ["a", "b", "b"], ["a", "b"])
    with_junk = macro_f1(["a", "zzz", "b"], ["a", "b", "b"], ["a", "b"])
    with_unhashable = macro_f1(["a", ["b"], "b"], ["a", "b", "b"], ["a", "b"])
    assert with_none == with_junk == with_unhashable == pytest.approx((1 + 2 / 3) / 2)


def test_all_none_predictions_score_zero_without_crashing() -> None:
    preds = [None] * 4
    golds = [0, 1, 1, 2]
    assert accuracy(preds, golds) == 0.0
    assert macro_f1(preds, golds, [0, 1, 2]) == 0.0
    assert balanced_accuracy(preds, golds, [0, 1, 2]) == 0.0


def test_gold_outside_labels_raises() -> None:
    with pytest.raises(ValueError, match="not in labels"):
        macro_f1(["a"], ["x"], ["a", "b"])


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        macro_f1(["a"], ["a", "b"])


def test_empty_input_is_nan() -> None:
    assert math.isnan(accuracy([], []))
    assert math.isnan(macro_f1([], [], ["a"]))
    assert math.isnan(balanced_accuracy([], [], ["a"]))


@pytest.mark.parametrize("seed", range(5))
def test_random_cases_match_reference(seed: int) -> None:
    rng = random.Random(seed)
    labels = ["entailment", "contradiction", "neutral"]
    golds = [rng.choice(labels) for _ in range(60)]
    preds = [rng.choice([*labels, None]) for _ in range(60)]
    assert accuracy(preds, golds) == pytest.approx(sum(p == g for p, g in zip(preds, golds, strict=True)) / 60)
    assert macro_f1(preds, golds, labels) == pytest.approx(_reference_macro_f1(preds, golds, labels))
    assert balanced_accuracy(preds, golds, labels) == pytest.approx(_reference_balanced_accuracy(preds, golds))


def test_encode_labels_and_batched_kernel() -> None:
    pred_codes, gold_codes, labels = encode_labels(PREDS, GOLDS)
    assert labels == ["a", "b", "c"]
    assert pred_codes.tolist() == [0, 1, 1, INVALID_CODE, 2]
    assert gold_codes.tolist() == [0, 0, 1, 1, 2]
    # rows of a 2-D batch are scored independently
    batch_p = np.stack([pred_codes, gold_codes])
    batch_g = np.stack([gold_codes, gold_codes])
    out = macro_f1_codes(batch_p, batch_g, 3)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(macro_f1(PREDS, GOLDS))
    assert out[1] == pytest.approx(1.0)
