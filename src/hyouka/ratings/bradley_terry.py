"""Bradley-Terry ratings by maximum likelihood, ties as half a win, with bootstrap intervals.

The model and its scale are Chatbot Arena's (FastChat's ``compute_mle_elo``): model i beats
model j with probability ``1 / (1 + base ** ((R_j - R_i) / scale))``, a tie counts as half a win
for each, and ratings are ``initial + scale * theta`` for the maximum-likelihood ``theta``.
Ratings are only defined up to a common shift: they average ``initial`` unless an ``anchor``
model is pinned to a rating (Arena pins one model, in every bootstrap round too).

The fit works on votes aggregated per pair of models and runs Newton's method on the aggregated
likelihood, every bootstrap round at once: a round is a multinomial resample of the pair-and-outcome
counts (the same as resampling the votes with replacement) and starts from the full-data fit.
A round whose resample leaves some rating unbounded (a model that won, or lost, all its resampled
votes) is counted in ``n_unconverged`` and aligned to the full fit by its median difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import log_expit

from hyouka.ratings.votes import PairCounts, Vote, pair_counts

__all__ = [
    "BradleyTerry",
    "RatingsUndefinedError",
    "bradley_terry",
    "fit_bradley_terry",
    "predicted_win_rates",
    "rank_by_interval",
    "undefined_reason",
]


class RatingsUndefinedError(ValueError):
    """The maximum-likelihood ratings do not exist: some group of models won, or lost, every vote against the rest."""


@dataclass
class BradleyTerry:
    """Ratings with their intervals and ranks; arrays follow ``models``."""

    models: list[str]
    ratings: np.ndarray
    ci_low: np.ndarray | None
    ci_high: np.ndarray | None
    rank: np.ndarray
    n_votes: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    rounds: int
    seed: int
    confidence: float
    n_unconverged: int = 0  # bootstrap rounds whose resample left a rating unbounded
    bootstrap: np.ndarray | None = None  # (rounds, models)

    def rows(self) -> list[dict[str, Any]]:
        """One row per model, best first."""
        order = np.argsort(-self.ratings, kind="stable")
        out = []
        for i in order:
            out.append({
                "model": self.models[i], "rank": int(self.rank[i]), "rating": float(self.ratings[i]),
                "ci_low": None if self.ci_low is None else float(self.ci_low[i]),
                "ci_high": None if self.ci_high is None else float(self.ci_high[i]),
                "n_votes": int(self.n_votes[i]), "wins": int(self.wins[i]), "losses": int(self.losses[i]),
                "ties": int(self.ties[i]),
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows(), "rounds": self.rounds, "seed": self.seed, "confidence": self.confidence,
                "n_unconverged": self.n_unconverged}


def rank_by_interval(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rank of each model: 1 + the number of models whose interval lies wholly above its own."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)


def undefined_reason(counts: PairCounts) -> str | None:
    """Why the maximum-likelihood ratings do not exist for ``counts``, or None when they do.

    They exist exactly when the graph "i scored against j" (a win or a tie) is strongly connected.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = len(counts.models)
    if m < 2:
        return "fewer than two models"
    w1, w2, t = counts.counts.T
    rows = np.concatenate([counts.first[(w1 + t) > 0], counts.second[(w2 + t) > 0]])
    cols = np.concatenate([counts.second[(w1 + t) > 0], counts.first[(w2 + t) > 0]])
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(m, m))
    n_groups, labels = connected_components(graph, directed=True, connection="strong")
    if n_groups == 1:
        return None
    groups = [[counts.models[i] for i in np.flatnonzero(labels == g)] for g in range(n_groups)]
    shown = " | ".join(", ".join(g) for g in groups)
    return (f"the models fall into {n_groups} groups that never met, or where one group won every vote against "
            f"another ({shown}); their ratings are unbounded: add votes between the groups")


def _incidence(counts: PairCounts) -> np.ndarray:
    d = np.zeros((counts.first.size, len(counts.models)))
    rows = np.arange(counts.first.size)
    d[rows, counts.first] = 1.0
    d[rows, counts.second] = -1.0
    return d


def _newton(counts: PairCounts, weights: np.ndarray, theta: np.ndarray, alpha: float,
            max_iter: int = 60, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Maximise each row's likelihood; ``weights`` (B, pairs, 3), ``theta`` (B, models) the starts.

    Returns ``(theta, converged)``; theta of every row sums to zero.
    """
    m = len(counts.models)
    first, second = counts.first, counts.second
    incidence = _incidence(counts)
    score = weights[:, :, 0] + 0.5 * weights[:, :, 2]  # wins of the first model, ties as half
    total = weights.sum(axis=2)
    rest = total - score
    theta = theta - theta.mean(axis=1, keepdims=True)
    converged = np.zeros(theta.shape[0], dtype=bool)
    diag = np.arange(m)

    def loglik(th: np.ndarray, s: np.ndarray, r: np.ndarray) -> np.ndarray:
        x = alpha * (th[:, first] - th[:, second])
        return (s * log_expit(x) + r * log_expit(-x)).sum(axis=1)

    active = np.arange(theta.shape[0])
    for _ in range(max_iter):
        if active.size == 0:
            break
        th, s, n, r = theta[active], score[active], total[active], rest[active]
        x = alpha * (th[:, first] - th[:, second])
        p = np.exp(log_expit(x))
        grad = alpha * (s - n * p) @ incidence
        w = alpha * alpha * n * p * (1.0 - p)
        hess = np.zeros((active.size, m, m))
        hess[:, first, second] = -w
        hess[:, second, first] = -w
        hess[:, diag, diag] = -hess.sum(axis=2)
        # + c * 11^T pins the free shift (the gradient sums to zero, so the step does too);
        # the tiny ridge keeps a round whose resample split the models into groups solvable
        level = hess[:, diag, diag].mean(axis=1)[:, None, None] + 1e-12
        system = hess + level / m + 1e-10 * level * np.eye(m)
        step = np.linalg.solve(system, grad[:, :, None])[:, :, 0]
        step -= step.mean(axis=1, keepdims=True)
        before = loglik(th, s, r)
        scale = np.ones(active.size)
        for _ in range(30):  # halve the step where it lowered the likelihood
            worse = loglik(th + scale[:, None] * step, s, r) < before - 1e-12 * np.abs(before)
            if not worse.any():
                break
            scale[worse] *= 0.5
        theta[active] = th + scale[:, None] * step
        done = np.abs(scale[:, None] * step).max(axis=1) < tol
        converged[active[done]] = True
        active = active[~done]
    return theta, converged


def _to_ratings(theta: np.ndarray, models: Sequence[str], scale: float, initial: float,
                anchor: tuple[str, float] | None) -> np.ndarray:
    ratings = initial + scale * theta
    if anchor is not None:
        name, value = anchor
        if name not in models:
            raise ValueError(f"anchor model {name!r} has no votes (models: {list(models)})")
        k = list(models).index(name)
        ratings = ratings + (value - ratings[..., [k]])
    return ratings


def fit_bradley_terry(
    data: PairCounts | Sequence[Vote], *, base: float = 10.0, scale: float = 400.0, initial: float = 1000.0,
    anchor: tuple[str, float] | None = None,
) -> dict[str, float]:
    """The maximum-likelihood ratings; raises :class:`RatingsUndefinedError` when they do not exist."""
    counts = data if isinstance(data, PairCounts) else pair_counts(data)
    reason = undefined_reason(counts)
    if reason:
        raise RatingsUndefinedError(reason)
    m = len(counts.models)
    theta, _ = _newton(counts, counts.counts[None], np.zeros((1, m)), math.log(base), max_iter=200)
    ratings = _to_ratings(theta[0], counts.models, scale, initial, anchor)
    return dict(zip(counts.models, ratings.tolist(), strict=True))


def bradley_terry(
    data: PairCounts | Sequence[Vote], *, rounds: int = 1000, seed: int = 0, confidence: float = 0.95,
    base: float = 10.0, scale: float = 400.0, initial: float = 1000.0, anchor: tuple[str, float] | None = None,
    keep_rounds: bool = False,
) -> BradleyTerry:
    """Ratings, percentile-bootstrap intervals over ``rounds`` resamples (``seed`` fixed), ranks by interval.

    ``rounds=0`` skips the bootstrap: no intervals, and ranks by the ratings alone.
    """
    counts = data if isinstance(data, PairCounts) else pair_counts(data)
    reason = undefined_reason(counts)
    if reason:
        raise RatingsUndefinedError(reason)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    m, alpha = len(counts.models), math.log(base)
    theta, _ = _newton(counts, counts.counts[None], np.zeros((1, m)), alpha, max_iter=200)
    ratings = _to_ratings(theta[0], counts.models, scale, initial, anchor)
    outcomes = counts.outcomes_per_model()
    low = high = kept = None
    n_unconverged = 0
    if rounds > 0:
        rng = np.random.default_rng(seed)
        cells = counts.counts.ravel()
        draws = rng.multinomial(counts.n_votes, cells / cells.sum(), size=rounds).astype(float)
        boot, converged = _newton(counts, draws.reshape(rounds, *counts.counts.shape), np.repeat(theta, rounds, 0),
                                  alpha)
        n_unconverged = int((~converged).sum())
        if n_unconverged:
            # a resample where some model won (or lost) every vote leaves its rating unbounded, and the
            # mean-zero gauge would drag every other rating with it: align such rounds to the full fit
            # by the median difference, which the bounded majority decides
            loose = ~converged
            boot[loose] -= np.median(boot[loose] - theta, axis=1, keepdims=True)
        kept = _to_ratings(boot, counts.models, scale, initial, anchor)
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(kept, [tail, 100 - tail], axis=0)
        rank = rank_by_interval(low, high)
    else:
        rank = 1 + (ratings[None, :] > ratings[:, None]).sum(axis=1)
    return BradleyTerry(
        models=list(counts.models), ratings=ratings, ci_low=low, ci_high=high, rank=rank,
        n_votes=counts.votes_per_model(), wins=outcomes["wins"], losses=outcomes["losses"], ties=outcomes["ties"],
        rounds=rounds, seed=seed, confidence=confidence, n_unconverged=n_unconverged,
        bootstrap=kept if keep_rounds else None,
    )


def predicted_win_rates(ratings: dict[str, float], *, base: float = 10.0, scale: float = 400.0) -> np.ndarray:
    """The probability that the row model beats the column model, from ratings (in the dict's order)."""
    r = np.array(list(ratings.values()), dtype=float)
    return 1.0 / (1.0 + base ** ((r[None, :] - r[:, None]) / scale))
