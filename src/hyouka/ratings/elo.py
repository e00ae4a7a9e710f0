"""Online Elo: ratings updated vote by vote, in the order the votes came.

After each vote, ``R_a += K * (S_a - E_a)`` and ``R_b -= K * (S_a - E_a)`` with
``E_a = 1 / (1 + base ** ((R_b - R_a) / scale))`` and ``S_a`` 1, 0 or 0.5 (a tie of either kind).
Defaults follow Chatbot Arena: K 4, base 10, scale 400, every model starting at 1000.
Unlike Bradley-Terry, the result depends on the order of the votes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hyouka.ratings.votes import Vote, vote_scores

__all__ = ["bootstrap_elo", "online_elo"]


def online_elo(
    votes: Sequence[Vote], *, k: float = 4.0, base: float = 10.0, scale: float = 400.0, initial: float = 1000.0
) -> dict[str, float]:
    """Each model's rating after all ``votes``, applied in order."""
    if k <= 0:
        raise ValueError(f"Elo K must be positive, got {k}")
    scores = vote_scores(v[2] for v in votes)
    ratings: dict[str, float] = {}
    for (a, b, _), s in zip(votes, scores, strict=True):
        ra, rb = ratings.setdefault(a, initial), ratings.setdefault(b, initial)
        expected = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        ratings[a] = ra + k * (s - expected)
        ratings[b] = rb - k * (s - expected)
    return dict(sorted(ratings.items()))


def bootstrap_elo(
    votes: Sequence[Vote], *, rounds: int = 1000, seed: int = 0, k: float = 4.0, base: float = 10.0,
    scale: float = 400.0, initial: float = 1000.0,
) -> tuple[list[str], np.ndarray]:
    """Elo over ``rounds`` resamples of the votes (drawn with replacement, in random order): ``(models, ratings)``.

    ``ratings`` has one row per round; all rounds advance together, one vote position at a time.
    """
    models = sorted({m for v in votes for m in v[:2]})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[v[0]] for v in votes], dtype=np.int64)
    b = np.array([index[v[1]] for v in votes], dtype=np.int64)
    scores = vote_scores(v[2] for v in votes)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(votes), size=(len(votes), rounds))
    ratings = np.full((rounds, len(models)), float(initial))
    alpha = math.log(base) / scale
    rows = np.arange(rounds)
    for pick in picks:
        ia, ib = a[pick], b[pick]
        expected = 1.0 / (1.0 + np.exp(alpha * (ratings[rows, ib] - ratings[rows, ia])))
        update = k * (scores[pick] - expected)
        ratings[rows, ia] += update
        ratings[rows, ib] -= update
    return models, ratings
