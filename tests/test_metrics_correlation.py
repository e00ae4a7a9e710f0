"""Correlations: agreement with scipy and NaN only for degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hyouka.metrics.correlation import (
    average_ranks_codes,
    degenerate_reason,
    kendall,
    pearson,
    pearson_rows,
    spearman,
)


@pytest.fixture()
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.round(rng.uniform(0, 5, 200), 1)  # JSTS-like scores with ties
    y = np.clip(x + rng.normal(0, 1, 200), 0, 5)
    return x, y


def test_agrees_with_scipy(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert kendall(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert pearson(list(x), list(y)) == pytest.approx(pearson(x, y))


def test_hand_worked() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1, 2, 3, 4], [1, 4, 9, 16]) < 1.0


@pytest.mark.filterwarnings("error")  # no ConstantInputWarning or RuntimeWarning either
@pytest.mark.parametrize("func", [pearson, spearman, kendall])
@pytest.mark.parametrize(("x", "y"), [([], []), ([1.0], [2.0]), ([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [5, 5, 5])])
def test_degenerate_input_is_nan(func, x, y) -> None:
    assert math.isnan(func(x, y))
    assert degenerate_reason(x, y) is not None


@pytest.mark.parametrize("func", [pearson, spearman, kendall])
def test_bad_input_raises(func) -> None:
    with pytest.raises(ValueError):
        func([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        func([1, 2, float("nan")], [1, 2, 3])


def test_pearson_rows_matches_scipy_per_row() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 40))
    y = x + rng.normal(size=(6, 40))
    x[2] = 3.0  # a constant row
    out = pearson_rows(x, y)
    assert math.isnan(out[2])
    for i in (0, 1, 3, 4, 5):
        assert out[i] == pytest.approx(stats.pearsonr(x[i], y[i]).statistic)


def test_average_ranks_codes_matches_rankdata() -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(0, 7, size=(5, 30)).astype(float) / 2  # many ties
    uniques, codes = np.unique(values, return_inverse=True)
    codes = codes.reshape(values.shape)
    np.testing.assert_allclose(average_ranks_codes(codes, uniques.size), stats.rankdata(values, axis=-1))
