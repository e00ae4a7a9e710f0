"""Assemble a report from stored runs: leaderboard, row costs, charts, examples and metadata."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hyouka.pricing.table import PriceTable, load_prices
from hyouka.report.charts import Chart, board_charts
from hyouka.report.examples import category_scores
from hyouka.report.leaderboard import Leaderboard, build_leaderboards
from hyouka.report.summary import RowStats, board_stats
from hyouka.report.views import RunView, load_views
from hyouka.store.store import Store
from hyouka.tasks.registry import SuiteSpec


@dataclass
class Report:
    """Everything a report shows, before it is rendered."""

    title: str
    board: Leaderboard  # the first table (charts and exports read it)
    stats: list[RowStats]
    views: list[RunView]
    boards: list[Leaderboard] = field(default_factory=list)  # every table, ``board`` first
    all_stats: list[list[RowStats]] = field(default_factory=list)  # each table's row stats
    charts: list[Chart] = field(default_factory=list)
    categories: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    price_source: str = "the default price table"
    ladder: Any = None  # a hyouka.ladder result, shown first with its own charts
    ladder_charts: list[Chart] = field(default_factory=list)
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def build_report(
    store: Store,
    run_ids: Iterable[str] | None = None,
    *,
    suite: str | SuiteSpec | None = None,
    prices: PriceTable | str | None = None,
    charts: bool = True,
    title: str = "hyouka evaluation report",
    ladder: Any = None,
) -> Report:
    """A report on ``run_ids`` (ids or unique prefixes; default: every completed run).

    ``ladder`` (a :class:`hyouka.evaluation.ladder.LadderResult`) puts the ladder first: its
    recommendation, its table and its charts (:mod:`hyouka.report.ladder_charts`).

    Its tables are :func:`~hyouka.report.leaderboard.build_leaderboards`'s, as ``hyouka leaderboard`` shows them.
    """
    table = load_prices(prices)
    views = load_views(store, run_ids, prices=table)
    notes = [f"run {v.id} ({v.model} on {v.task}) is {v.run['status']}: it is listed but not ranked"
             for v in views if v.run["status"] != "completed"]
    done = [v for v in views if v.run["status"] == "completed"]
    boards = build_leaderboards(store, suite=suite, run_ids=[v.id for v in done]) or [
        Leaderboard(tasks=[], rows=[], suite=None, title="no completed runs")]
    all_stats = [board_stats(b, done) for b in boards]
    categories = category_scores(done)
    report = Report(title=title, board=boards[0], stats=all_stats[0], views=views, boards=boards,
                    all_stats=all_stats, categories=categories, notes=notes, price_source=_describe(table))
    board = boards[0]
    stats = all_stats[0]
    if charts:
        report.charts = board_charts(board, stats, categories)
    if ladder is not None:
        report.ladder = ladder
        if charts:
            from hyouka.report.ladder_charts import ladder_charts

            report.ladder_charts = ladder_charts(ladder)
    return report


def _describe(table: PriceTable) -> str:
    names = [f"{source} ({version})" if version else source for source, version, _ in table.layers]
    return "prices from " + ", then ".join(names)
