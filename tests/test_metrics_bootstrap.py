"""The vectorised bootstrap agrees with a plain loop over the same resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hyouka.metrics import bootstrap as bootstrap_module
from hyouka.metrics.bootstrap import bootstrap, resample_indices
from hyouka.metrics.classification import encode_labels, macro_f1, macro_f1_codes
from hyouka.metrics.correlation import average_ranks_codes, pearson_rows


def _loop_values(statistic, *arrays, n_resamples: int = 200, seed: int = 0) -> np.ndarray:
    """Brute force: one statistic call per resample, on Python lists."""
    n = len(arrays[0])
    values = []
    for chunk in resample_indices(n, n_resamples, seed):
        for row in chunk:
            values.append(statistic(*([a[i] for i in row] for a in arrays)))
    return np.array(values)


def _summary(values: np.ndarray) -> tuple[float, float, float]:
    low, high = np.quantile(values, [0.025, 0.975])
    return float(values.std(ddof=1)), float(low), float(high)


def _assert_matches(result, values: np.ndarray) -> None:
    stderr, low, high = _summary(values)
    assert result.stderr == pytest.approx(stderr, rel=1e-9)
    assert result.ci_low == pytest.approx(low, rel=1e-9)
    assert result.ci_high == pytest.approx(high, rel=1e-9)


def test_resample_indices_are_deterministic_and_in_range() -> None:
    a = np.concatenate(list(resample_indices(50, 300, seed=3)))
    b = np.concatenate(list(resample_indices(50, 300, seed=3)))
    c = np.concatenate(list(resample_indices(50, 300, seed=4)))
    assert a.shape == (300, 50)
    assert (a == b).all() and not (a == c).all()
    assert a.min() >= 0 and a.max() < 50


def test_vectorised_mean_matches_loop_and_theory() -> None:
    rng = np.random.default_rng(0)
    scores = (rng.random(400) < 0.3).astype(float)
    result = bootstrap(lambda s: s.mean(axis=-1), scores, n_resamples=200, vectorized=True)
    _assert_matches(result, _loop_values(lambda s: sum(s) / len(s), list(scores)))
    p = scores.mean()
    assert result.stderr == pytest.approx(math.sqrt(p * (1 - p) / 400), rel=0.2)
    assert result.ci_low < p < result.ci_high


def test_vectorised_macro_f1_matches_loop() -> None:
    rng = np.random.default_rng(1)
    labels = ["yes", "no", "maybe"]
    golds = [labels[i] for i in rng.integers(0, 3, 300)]
    preds = [g if rng.random() < 0.6 else rng.choice([*labels, None]) for g in golds]
    pred_codes, gold_codes, _ = encode_labels(preds, golds, labels)
    result = bootstrap(lambda p, g: macro_f1_codes(p, g, 3), pred_codes, gold_codes, n_resamples=200, vectorized=True)
    _assert_matches(result, _loop_values(lambda p, g: macro_f1(p, g, labels), preds, golds))


def test_vectorised_pearson_and_spearman_match_scipy_loop() -> None:
    rng = np.random.default_rng(2)
    x = np.round(rng.uniform(0, 5, 150), 0)  # heavy ties: resampled ranks must be recomputed
    y = x + rng.normal(0, 1.5, 150)
    result = bootstrap(pearson_rows, x, y, n_resamples=200, vectorized=True)
    _assert_matches(result, _loop_values(lambda a, b: stats.pearsonr(a, b).statistic, list(x), list(y)))

    ux, cx = np.unique(x, return_inverse=True)
    uy, cy = np.unique(y, return_inverse=True)

    def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return pearson_rows(average_ranks_codes(a, ux.size), average_ranks_codes(b, uy.size))

    result = bootstrap(spearman_rows, cx.ravel(), cy.ravel(), n_resamples=200, vectorized=True)
    _assert_matches(result, _loop_values(lambda a, b: stats.spearmanr(a, b).statistic, list(x), list(y)))


def test_loop_fallback_accepts_ragged_and_string_data() -> None:
    preds = ["東京", "大阪", "京都", "奈良"]
    refs = [["東京", "とうきょう"], ["大阪"], ["名古屋", "なごや", "中京"], ["奈良"]]

    def em(p, r) -> float:
        return sum(pi in ri for pi, ri in zip(p, r, strict=True)) / len(p)

    result = bootstrap(em, preds, refs, n_resamples=100)
    _assert_matches(result, _loop_values(em, preds, refs, n_resamples=100))


def test_chunking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    scores = rng.random(100)
    monkeypatch.setattr(bootstrap_module, "_MAX_CHUNK_ELEMENTS", 700)  # 7 rows per chunk
    assert len(list(resample_indices(100, 50))) == 8
    result = bootstrap(lambda s: s.mean(axis=-1), scores, n_resamples=50, vectorized=True)
    _assert_matches(result, _loop_values(lambda s: sum(s) / len(s), list(scores), n_resamples=50))


def test_undefined_resamples_are_dropped_and_counted() -> None:
    x = np.array([0.0, 0.0, 0.0, 1.0])  # many resamples are constant
    y = np.array([1.0, 2.0, 3.0, 4.0])
    result = bootstrap(pearson_rows, x, y, n_resamples=300, vectorized=True)
    assert 0 < result.n_valid < 300
    assert math.isfinite(result.stderr)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        bootstrap(np.mean, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        bootstrap(np.mean, [])
    with pytest.raises(ValueError, match="shape"):
        bootstrap(lambda s: s, [1.0, 2.0], vectorized=True)
