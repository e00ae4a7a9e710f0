"""Pairwise votes and their aggregation into per-pair counts, the form every rating is fitted on.

A vote is ``(model_a, model_b, winner)`` with ``winner`` one of ``"a"``, ``"b"``, ``"tie"`` or
``"bothbad"`` (Chatbot Arena's ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)`` are accepted too).
Both kinds of tie count as half a win for each side, as in Chatbot Arena.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["WINNERS", "PairCounts", "Vote", "normalize_winner", "pair_counts", "vote_scores"]

WINNERS = ("a", "b", "tie", "bothbad")
_ALIASES = {
    "a": "a", "model_a": "a", "left": "a",
    "b": "b", "model_b": "b", "right": "b",
    "tie": "tie", "draw": "tie",
    "bothbad": "bothbad", "both_bad": "bothbad", "tie (bothbad)": "bothbad", "both bad": "bothbad",
}

Vote = tuple[str, str, str]  # (model_a, model_b, winner)


def normalize_winner(value: str) -> str:
    """``"a"``, ``"b"``, ``"tie"`` or ``"bothbad"`` from any spelling Chatbot Arena or hyouka uses."""
    winner = _ALIASES.get(str(value).strip().lower())
    if winner is None:
        raise ValueError(f"winner {value!r} is none of a, b, tie, bothbad (or model_a, model_b, tie (bothbad))")
    return winner


def vote_scores(winners: Iterable[str]) -> np.ndarray:
    """Model A's score in each vote: 1 for a win, 0 for a loss, 0.5 for either kind of tie."""
    table = {"a": 1.0, "b": 0.0, "tie": 0.5, "bothbad": 0.5}
    return np.array([table[normalize_winner(w)] for w in winners], dtype=float)


@dataclass(frozen=True)
class PairCounts:
    """Votes aggregated per unordered pair of models.

    ``first[p] < second[p]`` index ``models``; ``counts[p]`` is ``[wins of first, wins of second, ties]``.
    Pairs never compared are absent.
    """

    models: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    counts: np.ndarray  # (n_pairs, 3) float

    @property
    def n_votes(self) -> int:
        return int(self.counts.sum())

    def votes_per_model(self) -> np.ndarray:
        n = self.counts.sum(axis=1)
        return np.bincount(self.first, n, len(self.models)) + np.bincount(self.second, n, len(self.models))

    def outcomes_per_model(self) -> dict[str, np.ndarray]:
        """Wins, losses and ties of every model (in the order of ``models``)."""
        m = len(self.models)
        w1, w2, t = self.counts.T
        wins = np.bincount(self.first, w1, m) + np.bincount(self.second, w2, m)
        losses = np.bincount(self.first, w2, m) + np.bincount(self.second, w1, m)
        ties = np.bincount(self.first, t, m) + np.bincount(self.second, t, m)
        return {"wins": wins, "losses": losses, "ties": ties}


def pair_counts(votes: Sequence[Vote], models: Sequence[str] | None = None) -> PairCounts:
    """Aggregate votes; ``models`` fixes the order (default: sorted names). A model against itself is an error."""
    names = tuple(models) if models is not None else tuple(sorted({m for v in votes for m in v[:2]}))
    index = {name: k for k, name in enumerate(names)}
    codes = {"a": 0, "b": 1, "tie": 2, "bothbad": 2}
    a = np.empty(len(votes), dtype=np.int64)
    b = np.empty(len(votes), dtype=np.int64)
    outcome = np.empty(len(votes), dtype=np.int64)
    for n, (model_a, model_b, winner) in enumerate(votes):
        if model_a == model_b:
            raise ValueError(f"vote {n + 1}: model {model_a!r} against itself")
        try:
            a[n], b[n] = index[model_a], index[model_b]
        except KeyError as exc:
            raise ValueError(f"vote {n + 1}: model {exc.args[0]!r} is not among {list(names)}") from None
        outcome[n] = codes[normalize_winner(winner)]
    low, high = np.minimum(a, b), np.maximum(a, b)
    # a win of A is a win of the lower index when A has it; ties stay ties
    outcome = np.where((outcome < 2) & (a > b), 1 - outcome, outcome)
    m = len(names)
    table = np.bincount((low * m + high) * 3 + outcome, minlength=m * m * 3).reshape(m, m, 3).astype(float)
    first, second = np.nonzero(table.sum(axis=2))
    return PairCounts(names, first.astype(np.int64), second.astype(np.int64), table[first, second])
