"""Correlation coefficients between paired numeric scores (e.g. JSTS similarity, judge vs human).

The scalar functions use ``scipy.stats``. They return NaN only for degenerate input (fewer than
two pairs, or a constant vector), where the coefficient is undefined; callers report ``n``.
Anything else wrong with the input (length mismatch, NaN or infinite values) raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np

__all__ = [
    "average_ranks_codes",
    "degenerate_reason",
    "kendall",
    "pearson",
    "pearson_rows",
    "spearman",
]

ArrayLike = Sequence[float] | np.ndarray


def _as_pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.ndim != 1 or ya.ndim != 1:
        raise ValueError("correlation inputs must be one-dimensional")
    if xa.shape != ya.shape:
        raise ValueError(f"length mismatch: {xa.size} vs {ya.size}")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValueError("correlation inputs must be finite (drop missing values first)")
    return xa, ya


def degenerate_reason(x: ArrayLike, y: ArrayLike) -> str | None:
    """Why a correlation of ``x`` and ``y`` is undefined, or ``None`` when it is defined."""
    xa, ya = _as_pair(x, y)
    if xa.size < 2:
        return f"fewer than 2 pairs (n={xa.size})"
    if np.ptp(xa) == 0:
        return "first vector is constant"
    if np.ptp(ya) == 0:
        return "second vector is constant"
    return None


def _stats() -> ModuleType:
    """``scipy.stats``, imported on first use: it takes most of a second, and most runs never correlate."""
    from scipy import stats

    return stats


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson's r; NaN when fewer than two pairs or a vector is constant."""
    if degenerate_reason(x, y):
        return float("nan")
    return float(_stats().pearsonr(*_as_pair(x, y)).statistic)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho (ties get average ranks); NaN when degenerate."""
    if degenerate_reason(x, y):
        return float("nan")
    return float(_stats().spearmanr(*_as_pair(x, y)).statistic)


def kendall(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b; NaN when degenerate."""
    if degenerate_reason(x, y):
        return float("nan")
    return float(_stats().kendalltau(*_as_pair(x, y)).statistic)


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis, NaN for rows where either vector is constant."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    xc = xa - xa.mean(axis=-1, keepdims=True)
    yc = ya - ya.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    defined = (np.ptp(xa, axis=-1) > 0) & (np.ptp(ya, axis=-1) > 0)
    r = np.divide((xc * yc).sum(axis=-1), denom, out=np.full(denom.shape, np.nan), where=defined)
    return np.clip(r, -1.0, 1.0)  # NaN stays NaN


def average_ranks_codes(codes: np.ndarray, n_unique: int) -> np.ndarray:
    """Average ranks (1-based, ties averaged) along the last axis of rank-coded data.

    ``codes[..., i]`` is the position of value ``i`` among the sorted distinct values of the
    original data (``np.unique(..., return_inverse=True)``). Ranking codes is the same as ranking
    values, and costs two passes instead of a sort per row, which makes resampled Spearman cheap.
    """
    c = np.asarray(codes, dtype=np.int64)
    lead = c.shape[:-1]
    n = c.shape[-1]
    rows = int(np.prod(lead, dtype=np.int64))
    c2 = c.reshape(rows, n)
    offsets = (np.arange(rows, dtype=np.int64) * n_unique)[:, None]
    counts = np.bincount((c2 + offsets).ravel(), minlength=rows * n_unique).reshape(rows, n_unique)
    below = np.cumsum(counts, axis=1) - counts
    rank_table = below + (counts + 1) / 2.0
    return np.take_along_axis(rank_table, c2, axis=1).reshape(c.shape)
