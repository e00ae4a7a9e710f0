"""Pairwise comparison with position swap: the judge sees both answers twice, in both orders.

A verdict that flips with the order (A first says A, B first says B… i.e. the judge follows a
position) counts as a tie and is reported as inconsistent. Win rates count a tie as half a win.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hyouka.engine.executor import Executor
from hyouka.judge.grading import DEFAULT_JUDGE_PARAMS, JudgeCall, Judgment, run_calls
from hyouka.judge.summary import ScoreSummary, summarize_scores
from hyouka.models.base import GenerationParams, Message

__all__ = ["PAIR_METRICS", "PairOutcome", "combine", "pair_metrics", "pair_summaries", "run_pairs", "win_rates"]

Winner = str  # "A", "B" or "tie", in terms of the two models (not positions)


@dataclass
class PairOutcome:
    """One item judged in both orders: the winner among the models, and whether the judge was consistent."""

    winner: Winner | None
    consistent: bool | None
    status: str
    verdict_ab: str | None  # verdict by position with model A shown first
    verdict_ba: str | None  # verdict by position with model B shown first
    ab: Judgment
    ba: Judgment

    @property
    def error(self) -> str | None:
        return next((j.error for j in (self.ab, self.ba) if not j.ok), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "consistent": self.consistent,
            "status": self.status,
            "verdict_ab": self.verdict_ab,
            "verdict_ba": self.verdict_ba,
            "ab": {k: v for k, v in self.ab.to_dict().items() if k != "responses"},
            "ba": {k: v for k, v in self.ba.to_dict().items() if k != "responses"},
        }


_SWAP = {"A": "B", "B": "A", "tie": "tie"}


def combine(ab: Judgment, ba: Judgment) -> PairOutcome:
    """The models' winner from a verdict with A first (``ab``) and one with B first (``ba``)."""
    failed = next((j for j in (ab, ba) if not j.ok), None)
    if failed is not None:
        return PairOutcome(None, None, failed.status, ab.value, ba.value, ab, ba)
    first, second = ab.value, _SWAP[ba.value]  # ``ba`` speaks of positions: its "A" is model B
    if first == second:
        return PairOutcome(first, True, "ok", ab.value, ba.value, ab, ba)
    return PairOutcome("tie", False, "ok", ab.value, ba.value, ab, ba)


def run_pairs(
    executor: Executor,
    answers: Sequence[tuple[str, str]],
    build: Callable[[int, str, str], tuple[Message, ...]],
    make_call: Callable[[int, tuple[Message, ...], str], JudgeCall],
    params: GenerationParams = DEFAULT_JUDGE_PARAMS,
) -> Iterator[tuple[int, PairOutcome]]:
    """Judge every item's ``(answer_a, answer_b)`` in both orders; yield ``(item, outcome)`` as pairs complete.

    ``build(item, first, second)`` makes the prompt showing ``first`` as A; ``make_call(item,
    messages, order)`` wraps it with its parser and tags (``order`` is ``"ab"`` or ``"ba"``).
    """
    calls = []
    for item, (a, b) in enumerate(answers):
        calls.append(make_call(item, build(item, a, b), "ab"))
        calls.append(make_call(item, build(item, b, a), "ba"))
    halves: dict[int, dict[str, Judgment]] = {}
    for index, judgment in run_calls(executor, calls, params):
        item, order = divmod(index, 2)
        got = halves.setdefault(item, {})
        got["ba" if order else "ab"] = judgment
        if len(got) == 2:
            del halves[item]
            yield item, combine(got["ab"], got["ba"])


def win_rates(outcomes: Sequence[PairOutcome | dict[str, Any]]) -> dict[str, Any]:
    """Wins, ties and inconsistencies over the items judged; a tie counts as half a win."""
    rows = [o.to_dict() if isinstance(o, PairOutcome) else o for o in outcomes]
    judged = [r for r in rows if r.get("status") == "ok"]
    n = len(judged)
    wins = Counter(r["winner"] for r in judged)
    inconsistent = sum(1 for r in judged if r.get("consistent") is False)

    def rate(x: float) -> float | None:
        return x / n if n else None

    return {
        "n_judged": n,
        "n_total": len(rows),
        "wins_a": wins["A"],
        "wins_b": wins["B"],
        "ties": wins["tie"],
        "inconsistent": inconsistent,
        "win_rate_a": rate(wins["A"] + 0.5 * wins["tie"]),
        "win_rate_b": rate(wins["B"] + 0.5 * wins["tie"]),
        "strict_win_rate_a": rate(wins["A"]),
        "strict_win_rate_b": rate(wins["B"]),
        "tie_rate": rate(wins["tie"]),
        "inconsistency_rate": rate(inconsistent),
        "statuses": dict(Counter(r.get("status") for r in rows)),
    }


PAIR_METRICS = ("win_rate_a", "win_rate_b", "tie_rate", "inconsistency_rate")
_WIN_SCORE = {"A": 1.0, "tie": 0.5, "B": 0.0}


def pair_metrics(outcome: PairOutcome) -> dict[str, float]:
    """Per-item values whose means are the run's rates (empty when the item was not judged)."""
    if outcome.status != "ok" or outcome.winner is None:
        return {}
    a = _WIN_SCORE[outcome.winner]
    return {
        "win_rate_a": a,
        "win_rate_b": 1.0 - a,
        "tie_rate": float(outcome.winner == "tie"),
        "inconsistency_rate": float(outcome.consistent is False),
    }


def pair_summaries(samples: Sequence[dict[str, Any]], *, seed: int = 0) -> list[ScoreSummary]:
    """Win rates (ties as half), tie and inconsistency rates over a pairwise run's samples."""
    statuses = [s["status"] for s in samples]
    out = []
    for name in PAIR_METRICS:
        values = [(s.get("metrics") or {}).get(name) for s in samples]
        out.append(summarize_scores(name, values, statuses, higher_is_better=name != "inconsistency_rate",
                                    seed=seed))
    return out
