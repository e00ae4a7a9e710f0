"""The metric registry: names, per-sample scores, aggregates with coverage and intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from hyouka.metrics import (
    TOKENIZER_NAME,
    accuracy,
    aggregate,
    balanced_accuracy,
    bleu,
    char_f1,
    chrf,
    macro_f1,
    metric_info,
    metric_names,
    rouge_l,
    sample_score,
)
from hyouka.metrics.bootstrap import bootstrap

REQUIRED = [
    "acc",
    "macro_f1",
    "balanced_acc",
    "pearson",
    "spearman",
    "exact_match",
    "char_f1",
    "format_error_rate",
    "rouge1",
    "rouge2",
    "rouge_l",
    "bleu",
    "chrf",
    "ja_char_ratio",
]


def test_required_names_are_registered() -> None:
    assert set(REQUIRED) <= set(metric_names())


def test_unknown_metric_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'accuracy'.*macro_f1"):
        aggregate("accuracy", ["a"], ["a"])
    with pytest.raises(ValueError, match="known metrics"):
        sample_score("nope", "a", "a")


def test_metadata() -> None:
    assert metric_info("format_error_rate").higher_is_better is False
    assert metric_info("rouge_l").tokenizer == metric_info("bleu").tokenizer == TOKENIZER_NAME
    assert metric_info("chrf").tokenizer is None
    assert aggregate("format_error_rate", [None, "a"], ["a", "a"]).higher_is_better is False


def test_sample_scores() -> None:
    assert sample_score("acc", "A", "A") == 1.0
    assert sample_score("acc", None, "A") == 0.0
    assert sample_score("exact_match", "ＡＢＣ１２３", ["ABC123"]) == 1.0
    assert sample_score("exact_match", None, ["ABC123"]) == 0.0
    assert sample_score("char_f1", "東京都庁", ["東京"]) == pytest.approx(2 / 3)
    assert sample_score("char_f1", None, "東京") == 0.0
    assert sample_score("format_error_rate", None, "x") == 1.0
    assert sample_score("rouge_l", "今日は晴れ", "今日は晴れ") == 1.0
    assert sample_score("rouge1", None, "今日は晴れ") == 0.0
    assert sample_score("ja_char_ratio", "はい", None) == 1.0
    for corpus_metric in ("macro_f1", "balanced_acc", "pearson", "spearman", "bleu", "chrf"):
        assert sample_score(corpus_metric, "a", "a") is None


def _classification_data(n: int = 500, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    golds = [int(g) for g in rng.integers(0, 3, n)]
    preds = [g if rng.random() < 0.7 else (None if rng.random() < 0.3 else int(rng.integers(0, 3))) for g in golds]
    return preds, golds


def test_classification_aggregates_match_plain_functions() -> None:
    preds, golds = _classification_data()
    acc = aggregate("acc", preds, golds)
    assert acc.value == pytest.approx(accuracy(preds, golds))
    assert acc.n_scored == acc.n_total == 500  # None counts as wrong: every item is scored
    assert acc.ci_low < acc.value < acc.ci_high
    assert acc.stderr == pytest.approx(math.sqrt(acc.value * (1 - acc.value) / 500), rel=0.15)

    f1 = aggregate("macro_f1", preds, golds, labels=[0, 1, 2, 3])
    assert f1.value == pytest.approx(macro_f1(preds, golds, [0, 1, 2, 3]))
    assert f1.value < aggregate("macro_f1", preds, golds).value  # the absent class 3 counts as F1 0
    bal = aggregate("balanced_acc", preds, golds, labels=[0, 1, 2])
    assert bal.value == pytest.approx(balanced_accuracy(preds, golds))


def test_macro_f1_interval_matches_a_loop_bootstrap() -> None:
    preds, golds = _classification_data(200, seed=1)
    agg = aggregate("macro_f1", preds, golds, labels=[0, 1, 2], seed=7, n_resamples=300)
    loop = bootstrap(lambda p, g: macro_f1(list(p), list(g), [0, 1, 2]), preds, golds, n_resamples=300, seed=7)
    assert (agg.stderr, agg.ci_low, agg.ci_high) == pytest.approx((loop.stderr, loop.ci_low, loop.ci_high))


def test_seed_makes_intervals_reproducible() -> None:
    preds, golds = _classification_data()
    a = aggregate("macro_f1", preds, golds, seed=1)
    assert a == aggregate("macro_f1", preds, golds, seed=1)
    assert a.ci_low != aggregate("macro_f1", preds, golds, seed=2).ci_low


def test_n_total_reports_coverage() -> None:
    agg = aggregate("exact_match", ["a", "b"], [["a"], ["c"]], n_total=5)
    assert (agg.value, agg.n_scored, agg.n_total) == (0.5, 2, 5)
    with pytest.raises(ValueError, match="n_total"):
        aggregate("acc", ["a", "b"], ["a", "b"], n_total=1)
    with pytest.raises(ValueError):
        aggregate("acc", ["a"], ["a", "b"])


def test_correlation_leaves_out_none_and_counts_the_rest() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 5, 100)
    y = x + rng.normal(0, 1, 100)
    preds: list = list(x)
    preds[::10] = [None] * 10
    preds[5] = float("nan")
    kept = [i for i, p in enumerate(preds) if p is not None and not math.isnan(p)]
    for metric, reference in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        agg = aggregate(metric, preds, list(y))
        assert agg.n_scored == 89 and agg.n_total == 100
        assert agg.value == pytest.approx(reference(x[kept], y[kept]).statistic)
        assert agg.ci_low < agg.value < agg.ci_high and agg.stderr > 0


def test_spearman_interval_matches_a_loop_bootstrap() -> None:
    rng = np.random.default_rng(4)
    x = np.round(rng.uniform(0, 5, 80))
    y = np.round(x + rng.normal(0, 1, 80), 1)
    agg = aggregate("spearman", list(x), list(y), n_resamples=200, seed=3)
    loop = bootstrap(lambda a, b: stats.spearmanr(a, b).statistic, x, y, n_resamples=200, seed=3)
    assert (agg.stderr, agg.ci_low, agg.ci_high) == pytest.approx((loop.stderr, loop.ci_low, loop.ci_high))


@pytest.mark.filterwarnings("error")
def test_degenerate_correlation_is_nan_with_a_reason() -> None:
    agg = aggregate("pearson", [3.0, 3.0, 3.0, None], [1.0, 2.0, 3.0, 4.0])
    assert math.isnan(agg.value) and agg.n_scored == 3 and agg.n_total == 4
    assert agg.stderr is None and agg.ci_low is None and "constant" in agg.note
    agg = aggregate("spearman", [None, None, 1.0], [1.0, 2.0, 3.0])
    assert math.isnan(agg.value) and agg.n_scored == 1 and "fewer than 2" in agg.note


def test_empty_input_is_nan_with_a_reason() -> None:
    for metric in REQUIRED:
        agg = aggregate(metric, [], [], n_total=3)
        assert math.isnan(agg.value), metric
        assert agg.n_scored == 0 and agg.n_total == 3 and agg.note


def test_format_error_rate() -> None:
    agg = aggregate("format_error_rate", [None, "a", None, "b"], ["a", "a", "b", "b"])
    assert agg.value == 0.5 and agg.n_scored == 4


def test_text_aggregates() -> None:
    preds = ["今日は良い天気です。", None, "猫が寝ている。", "会議は三時に始まります。"]
    refs = ["今日はいい天気ですね。", "東京は首都です。", "猫がソファで寝ている。", "会議は三時に始まります。"]
    rl = aggregate("rouge_l", preds, refs)
    expected = np.mean([rouge_l(p, r) if p is not None else 0.0 for p, r in zip(preds, refs, strict=True)])
    assert rl.value == pytest.approx(expected) and rl.n_scored == 4
    assert aggregate("bleu", preds, refs).value == pytest.approx(bleu(preds, refs))
    assert aggregate("chrf", preds, refs).value == pytest.approx(chrf(preds, refs))
    assert aggregate("ja_char_ratio", preds, refs).value == pytest.approx(0.75)


def test_bleu_interval_matches_a_loop_bootstrap() -> None:
    preds = [
        "今日は良い天気です。",
        "猫が寝ている。",
        "会議は三時に始まります。",
        "富士山は高い山だ。",
        "東京は大きい。",
    ]
    refs = [
        "今日はいい天気ですね。",
        "猫がソファで寝ている。",
        "会議は三時に始まる。",
        "富士山は日本一高い山だ。",
        "東京は広い。",
    ]
    for metric, func in (("bleu", bleu), ("chrf", chrf)):
        agg = aggregate(metric, preds, refs, n_resamples=100, seed=5)
        loop = bootstrap(lambda p, r, f=func: f(list(p), list(r)), preds, refs, n_resamples=100, seed=5)
        assert (agg.stderr, agg.ci_low, agg.ci_high) == pytest.approx((loop.stderr, loop.ci_low, loop.ci_high))


def test_every_metric_runs_and_serialises() -> None:
    preds = ["1", "2", None, "3", "1"]
    refs = ["1", "2", "2", "1", "1"]
    for metric in metric_names():
        agg = aggregate(metric, preds, refs, n_resamples=50)
        assert agg.metric == metric and agg.n_total == 5
        json.dumps(agg.to_dict())
    nan_agg = aggregate("pearson", [], [])
    assert nan_agg.to_dict()["value"] is None


def test_no_bootstrap_when_n_resamples_is_zero() -> None:
    agg = aggregate("acc", ["a", "b"], ["a", "a"], n_resamples=0)
    assert agg.value == 0.5 and agg.stderr is None and agg.ci_low is None


def test_char_f1_aggregate_is_mean_of_samples() -> None:
    preds = ["東京都", "おおさか", None]
    refs = [["東京"], ["大阪", "おおさか"], ["京都"]]
    expected = np.mean([char_f1(p, r) for p, r in zip(preds, refs, strict=True)])
    assert aggregate("char_f1", preds, refs).value == pytest.approx(expected)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="numeric"):
        aggregate("pearson", ["high", "low", "mid"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="None"):
        aggregate("macro_f1", ["a", "b"], ["a", None])
