"""precision_score / recall_score / f1_score against MLflow's classifier evaluator and scikit-learn.

MLflow (models/evaluation/evaluators/classifier.py) infers the label list as the sorted distinct
golds and predictions; two labels are binary with the last as the positive label, more are
``average="weighted"``. hyouka scores a ``None`` prediction as wrong (a false negative for its gold,
a false positive for no label): the scikit-learn reference gets a sentinel outside ``labels``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import hyouka
from hyouka.metrics.registry import aggregate

metrics = pytest.importorskip("sklearn.metrics")
classifier = pytest.importorskip("mlflow.models.evaluation.evaluators.classifier")
SCORES = ("precision_score", "recall_score", "f1_score")


def _noisy(golds: list, labels: list, every: int) -> list:
    """Predictions: each ``every``-th turned into the next label, each 11th missing (a format error)."""
    out = []
    for i, g in enumerate(golds):
        if i % 11 == 5:
            out.append(None)
        elif i % every == 0:
            out.append(labels[(labels.index(g) + 1) % len(labels)])
        else:
            out.append(g)
    return out


@pytest.fixture(scope="module")
def jnli_labels(jglue_dir: Path) -> list[str]:
    lines = (jglue_dir / "jnli-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8").splitlines()[:400]
    return [json.loads(line)["label"] for line in lines]


def _mlflow(golds: list, preds: list) -> dict[str, float]:
    labels = sorted(set(golds) | set(preds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(labels) == 2:
            return classifier._get_binary_classifier_metrics(y_true=golds, y_pred=preds, labels=labels,
                                                             pos_label=labels[-1])
        return classifier._get_multiclass_classifier_metrics(y_true=golds, y_pred=preds, labels=labels)


@pytest.mark.parametrize("every", [3, 7])
def test_multiclass_scores_are_mlflows_weighted_average(jnli_labels: list[str], every: int) -> None:
    labels = sorted(set(jnli_labels))
    preds = [p for p in _noisy(jnli_labels, labels, every)]
    answered = [(g, p) for g, p in zip(jnli_labels, preds, strict=True) if p is not None]
    theirs = _mlflow([g for g, _ in answered], [p for _, p in answered])  # MLflow itself has no None
    ours = {s: aggregate(s, [p for _, p in answered], [g for g, _ in answered], n_resamples=0).value for s in SCORES}
    assert ours == pytest.approx({s: theirs[s] for s in SCORES}, abs=1e-12)
    with_none = [p if p is not None else "<none>" for p in preds]
    for s in SCORES:
        expected = getattr(metrics, s)(jnli_labels, with_none, labels=labels, average="weighted", zero_division=0)
        value = aggregate(s, preds, jnli_labels, n_resamples=200)
        assert value.value == pytest.approx(expected, abs=1e-12)
        assert value.ci_low <= value.value <= value.ci_high and value.n_scored == len(preds)


def test_binary_scores_use_the_last_sorted_label_as_positive(jnli_labels: list[str]) -> None:
    golds = ["positive" if g == "entailment" else "negative" for g in jnli_labels]
    preds = _noisy(golds, ["negative", "positive"], 4)
    answered = [(g, p) for g, p in zip(golds, preds, strict=True) if p is not None]
    theirs = _mlflow([g for g, _ in answered], [p for _, p in answered])
    for s in SCORES:
        assert aggregate(s, [p for _, p in answered], [g for g, _ in answered], n_resamples=0).value == pytest.approx(
            theirs[s], abs=1e-12)
        # with the format errors: the positive label's score, a None being no positive prediction
        expected = getattr(metrics, s)(golds, [p or "<none>" for p in preds], labels=["positive"], average=None)[0]
        assert aggregate(s, preds, golds, n_resamples=0).value == pytest.approx(expected, abs=1e-12)
    # 0/1 labels: MLflow's mlflow.metrics.f1_score() default (pos_label=1) gives the same
    ints = [int(g == "positive") for g in golds]
    int_preds = [int(p == "positive") for p in preds if p is not None]
    int_golds = [g for g, p in zip(ints, preds, strict=True) if p is not None]
    assert aggregate("f1_score", int_preds, int_golds, n_resamples=0).value == pytest.approx(
        metrics.f1_score(int_golds, int_preds), abs=1e-12)


def test_task_label_set_and_mixed_labels(tmp_path: Path) -> None:
    # a task's label set decides: three labels are weighted even if only two occur here
    value = aggregate("recall_score", [0, 0, 1, 1], [0, 1, 1, 1], labels=[0, 1, 2], n_resamples=0).value
    assert value == pytest.approx(metrics.recall_score([0, 1, 1, 1], [0, 0, 1, 1], labels=[0, 1, 2],
                                                       average="weighted", zero_division=0))
    with pytest.raises(ValueError, match="mixed types"):
        aggregate("f1_score", [1, "a"], [1, 1], n_resamples=0)


def test_evaluate_accepts_mlflow_classifier_names(jnli_labels: list[str], tmp_path: Path) -> None:
    labels = sorted(set(jnli_labels))
    preds = _noisy(jnli_labels, labels, 5)
    rows = [{"answer": p or "", "label": g} for p, g in zip(preds, jnli_labels, strict=True)]
    result = hyouka.evaluate(data=rows, predictions="answer", targets="label",
                             metrics=["f1_score", "precision", "recall"],
                             store=f"sqlite:///{tmp_path / 's.sqlite'}", cache=False)
    # an empty answer is a prediction "" (a label of its own, as MLflow would take it)
    answers = [r["answer"] for r in rows]
    for name, s in (("f1_score", "f1_score"), ("precision_score", "precision_score"), ("recall_score", "recall_score")):
        expected = getattr(metrics, s)(jnli_labels, answers, average="weighted", zero_division=0)
        assert result.metrics[name] == pytest.approx(expected, abs=1e-12)
