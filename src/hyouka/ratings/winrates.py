"""The observed win-rate matrix: how often the row model beat the column model, ties as half."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hyouka.ratings.votes import PairCounts, Vote, pair_counts

__all__ = ["win_rate_matrix"]


def win_rate_matrix(data: PairCounts | Sequence[Vote]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(models, rates, n)``: ``rates[i, j]`` is i's share of the votes against j (ties as half), NaN
    where the two never met; ``n[i, j]`` the votes between them."""
    counts = data if isinstance(data, PairCounts) else pair_counts(data)
    m = len(counts.models)
    n = np.zeros((m, m))
    won = np.zeros((m, m))
    w1, w2, t = counts.counts.T
    n[counts.first, counts.second] = n[counts.second, counts.first] = w1 + w2 + t
    won[counts.first, counts.second] = w1 + 0.5 * t
    won[counts.second, counts.first] = w2 + 0.5 * t
    rates = np.divide(won, n, out=np.full((m, m), np.nan), where=n > 0)
    return list(counts.models), rates, n
