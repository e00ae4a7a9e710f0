"""Bootstrap standard errors and percentile confidence intervals for corpus statistics.

Items are resampled with replacement by index: every array passed in is resampled with the same
indices, so paired data (prediction, reference) stays paired. With ``vectorized=True`` the
statistic is called once per chunk of resamples on arrays of shape ``(rows, n, ...)`` and must
return shape ``(rows,)``; otherwise it is called once per resample (slow, but any function works).
Vectorised kernels for the common statistics: ``np.mean(..., axis=-1)`` for per-sample scores,
``classification.accuracy_codes`` / ``macro_f1_codes`` / ``balanced_accuracy_codes``,
``correlation.pearson_rows`` and ``average_ranks_codes`` (Spearman).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_N_RESAMPLES", "BootstrapResult", "bootstrap", "resample_indices"]

DEFAULT_N_RESAMPLES = 1000
_MAX_CHUNK_ELEMENTS = 4_000_000  # indices per chunk: bounds memory at any corpus size


@dataclass(frozen=True)
class BootstrapResult:
    """Spread of a statistic over bootstrap resamples.

    ``n_valid`` counts resamples where the statistic was finite (a resampled correlation can be
    undefined); ``stderr`` and the interval are computed over those, NaN when fewer than two.
    """

    stderr: float
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int
    n_valid: int
    seed: int


def resample_indices(n: int, n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield chunks of resampling indices, shape ``(rows, n)``, ``n_resamples`` rows in all.

    Deterministic for a given ``(n, n_resamples, seed)``.
    """
    if n < 1:
        raise ValueError("cannot resample an empty sample")
    rng = np.random.default_rng(seed)
    chunk_rows = max(1, _MAX_CHUNK_ELEMENTS // n)
    done = 0
    while done < n_resamples:
        rows = min(chunk_rows, n_resamples - done)
        yield rng.integers(0, n, size=(rows, n))
        done += rows


def _as_indexable(values: Any, n: int | None) -> np.ndarray:
    if isinstance(values, np.ndarray):
        arr = values
    else:
        items = list(values)
        try:
            arr = np.asarray(items)
        except ValueError:  # ragged, e.g. several references per item
            arr = None
        if arr is None or arr.dtype == object or (arr.ndim > 1 and not np.issubdtype(arr.dtype, np.number)):
            arr = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):
                arr[i] = item
    if arr.ndim == 0:
        raise ValueError("bootstrap inputs must be sequences")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"all arrays must have the same length ({arr.shape[0]} vs {n})")
    return arr


def bootstrap(
    statistic: Callable[..., Any],
    *arrays: Sequence[Any] | np.ndarray,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    vectorized: bool = False,
) -> BootstrapResult:
    """Bootstrap ``statistic(*arrays)``: standard error and percentile confidence interval.

    ``arrays`` are equally long (one item per row); each is resampled along its first axis with
    the same indices. See the module docstring for the ``vectorized`` calling convention.
    """
    if not arrays:
        raise ValueError("bootstrap needs at least one array")
    if n_resamples < 1:
        raise ValueError("n_resamples must be positive")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    first = _as_indexable(arrays[0], None)
    data = [first, *(_as_indexable(a, first.shape[0]) for a in arrays[1:])]
    n = first.shape[0]

    values = np.empty(n_resamples, dtype=float)
    pos = 0
    for idx in resample_indices(n, n_resamples, seed):
        rows = idx.shape[0]
        if vectorized:
            out = np.asarray(statistic(*(a[idx] for a in data)), dtype=float)
            if out.shape != (rows,):
                raise ValueError(f"vectorized statistic returned shape {out.shape}, expected ({rows},)")
            values[pos : pos + rows] = out
        else:
            for r in range(rows):
                values[pos + r] = float(statistic(*(a[idx[r]] for a in data)))
        pos += rows

    finite = values[np.isfinite(values)]
    if finite.size < 2:
        nan = float("nan")
        return BootstrapResult(nan, nan, nan, confidence, n_resamples, int(finite.size), seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return BootstrapResult(
        stderr=float(finite.std(ddof=1)),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        n_resamples=n_resamples,
        n_valid=int(finite.size),
        seed=seed,
    )
