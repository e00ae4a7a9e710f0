"""Runs read back from the store with their samples and accounting, for reports and exports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hyouka.engine.accounting import call_rows, price_for, run_accounting
from hyouka.pricing.table import PriceTable, load_prices
from hyouka.report.leaderboard import subject_model

if TYPE_CHECKING:
    from hyouka.store.reader import SQLiteReader
    from hyouka.store.store import Store


@dataclass
class RunView:
    """One stored run: its row, aggregates, samples and accounting (priced with the report's table)."""

    run: dict[str, Any]
    aggregates: dict[str, dict[str, Any]]
    samples: list[dict[str, Any]] = field(default_factory=list)
    accounting: dict[str, Any] = field(default_factory=dict)
    answer_accounting: dict[str, Any] | None = None  # judge runs: the evaluated model's answer calls
    # the latencies, kept when the samples are let go (compact)
    _latencies: dict[bool, list[float]] | None = field(default=None, repr=False)

    def answer_calls(self) -> list[dict[str, Any]]:
        """In a judge run, the evaluated model's answers (kept in ``details['answer']``)."""
        return [s["details"]["answer"] for s in self.samples
                if isinstance((s.get("details") or {}).get("answer"), dict)]

    @property
    def id(self) -> str:
        return self.run["id"]

    @property
    def kind(self) -> str:
        return self.run.get("kind") or "benchmark"

    @property
    def model(self) -> str:
        """The model that answered the calls of this run (for a judge run, the judge)."""
        return self.run["model"]

    @property
    def subject(self) -> str:
        """The model this run evaluates."""
        return subject_model(self.run)

    @property
    def task(self) -> str:
        return self.run["task"]

    def latencies(self, *, answers: bool = False) -> list[float]:
        """Latency of each successful call (of the answers instead, for a judge run's subject)."""
        if self._latencies is not None:
            return self._latencies[answers]
        calls = self.answer_calls() if answers else call_rows(self.samples)
        return [float(c["latency_s"]) for c in calls if c.get("error") is None and c.get("latency_s") is not None]


def compact(view: RunView) -> RunView:
    """The view without its samples (its accounting and latencies kept): for views held in memory."""
    latencies = {False: view.latencies(), True: view.latencies(answers=True)}
    return RunView(run=view.run, aggregates=view.aggregates, accounting=view.accounting,
                   answer_accounting=view.answer_accounting, _latencies=latencies)


def load_views(
    store: Store | SQLiteReader,
    run_ids: Iterable[str] | None = None,
    *,
    prices: PriceTable | str | None = None,
    completed_only: bool = False,
    calls_only: bool = False,
) -> list[RunView]:
    """Runs by id (or unique prefix), or all runs, oldest first; costs use ``prices`` (default table).

    ``calls_only``: each sample holds only what accounting reads (``Store.call_samples``): enough for
    costs and latencies, a fraction of the reading on large runs."""
    table = load_prices(prices)
    if run_ids is None:
        rows = store.list_runs(status="completed" if completed_only else None)
    else:
        rows = [store.get_run(i) for i in dict.fromkeys(run_ids)]
        rows.sort(key=lambda r: r["created_at"])
    views = []
    for row in rows:
        if completed_only and row["status"] != "completed":
            continue
        samples = store.call_samples(row["id"]) if calls_only else store.samples(row["id"])
        price = price_for(table, row["model"], row.get("model_identity"))
        view = RunView(
            run=row,
            aggregates=store.aggregates(row["id"]),
            samples=samples,
            accounting=run_accounting(samples, price, duration_s=row.get("duration_s")),
        )
        if view.kind != "benchmark" and view.answer_calls():
            subject_price = price_for(table, view.subject, (row.get("config") or {}).get("model_identity"))
            view.answer_accounting = run_accounting([{"responses": view.answer_calls()}], subject_price)
        views.append(view)
    return views


def by_id(views: Sequence[RunView]) -> dict[str, RunView]:
    return {v.id: v for v in views}
