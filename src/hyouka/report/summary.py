"""Cost, tokens and latency of each leaderboard row: the model's own calls, and its judge's apart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from hyouka.engine.accounting import latency_summary
from hyouka.report.leaderboard import Leaderboard, Row
from hyouka.report.views import RunView, by_id


@dataclass
class RowStats:
    """What a row's runs cost; ``cost_usd`` is ``None`` when any of its model's calls is unpriced."""

    cost_usd: float | None = None
    judge_cost_usd: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    n_calls: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _sum(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else math.fsum(values)  # type: ignore[arg-type]


def row_stats(row: Row, views: dict[str, RunView]) -> RowStats:
    own = [views[i] for i in row.run_ids if i in views and views[i].kind == "benchmark"]
    judged = [views[i] for i in row.run_ids if i in views and views[i].kind != "benchmark"]
    stats = RowStats()
    for view in own:
        acc = view.accounting
        stats.prompt_tokens += acc.get("prompt_tokens", 0)
        stats.completion_tokens += acc.get("completion_tokens", 0)
        stats.n_calls += acc.get("n_calls", 0)
        stats.latencies.extend(view.latencies())
    answered = [v.answer_accounting for v in judged if v.answer_accounting]  # answers made within judge runs
    for view in judged:
        if view.answer_accounting:
            stats.prompt_tokens += view.answer_accounting.get("prompt_tokens", 0)
            stats.completion_tokens += view.answer_accounting.get("completion_tokens", 0)
            stats.n_calls += view.answer_accounting.get("n_calls", 0)
            stats.latencies.extend(view.latencies(answers=True))
    costs = [a.get("cost_usd") if not a.get("n_unpriced_calls") else None
             for a in [*(v.accounting for v in own), *answered]]
    stats.cost_usd = _sum(costs)
    stats.judge_cost_usd = _sum([v.accounting.get("cost_usd") for v in judged]) if judged else None
    summary = latency_summary(stats.latencies)
    stats.latency_p50, stats.latency_p95 = summary["p50"], summary["p95"]
    return stats


def board_stats(board: Leaderboard, views: Sequence[RunView]) -> list[RowStats]:
    """:func:`row_stats` for each row of ``board``, in order."""
    index = by_id(views)
    return [row_stats(row, index) for row in board.rows]
