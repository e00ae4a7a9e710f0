"""Runs read back from the store with their samples and accounting, for reports and exports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hyouka.engine.accounting import RunSummary, answer_calls, call_rows, ok_latencies, price_for, run_summary
from hyouka.pricing.table import PriceMatch, PriceTable, load_prices
from hyouka.store.subject import subject_model

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
    # the latencies of its calls and of its answers (RunSummary's), kept when the samples are not read
    _latencies: dict[bool, Sequence[float]] | None = field(default=None, repr=False)

    def answer_calls(self) -> list[dict[str, Any]]:
        """In a judge run, the evaluated model's answers (kept in ``details['answer']``)."""
        return answer_calls(self.samples)  # type: ignore[return-value]

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

    def latencies(self, *, answers: bool = False) -> Sequence[float]:
        """Latency of each successful call (of the answers instead, for a judge run's subject)."""
        if self._latencies is not None:
            return self._latencies[answers]
        return ok_latencies(self.answer_calls() if answers else call_rows(self.samples))


def compact(view: RunView) -> RunView:
    """The view without its samples (its accounting and latencies kept): for views held in memory."""
    latencies = {False: view.latencies(), True: view.latencies(answers=True)}
    return RunView(run=view.run, aggregates=view.aggregates, accounting=view.accounting,
                   answer_accounting=view.answer_accounting, _latencies=latencies)


def _rows(store: Store | SQLiteReader, run_ids: Iterable[str] | None, status: str | None) -> list[dict[str, Any]]:
    """The runs by id or unique prefix (one listing when every id is whole), or all runs, oldest first."""
    if run_ids is None:
        return store.list_runs(status=status)
    wanted = list(dict.fromkeys(run_ids))
    listed = {r["id"]: r for r in store.list_runs()} if len(wanted) > 1 else {}
    rows = [listed[i] if i in listed else store.get_run(i) for i in wanted]
    rows.sort(key=lambda r: r["created_at"])
    return rows


def _stored_summary(row: dict[str, Any], stored: dict[str, Any] | None, price: PriceMatch | None,
                    subject_price: PriceMatch | None) -> RunSummary | None:
    """The run's stored summary when it describes the run as it is now, at these prices."""
    if stored is None or row["status"] != "completed" or stored.get("finished_at") != row.get("finished_at"):
        return None
    summary = RunSummary.from_row(stored)
    return summary if summary is not None and summary.priced_as(price, subject_price) else None


def load_views(
    store: Store | SQLiteReader,
    run_ids: Iterable[str] | None = None,
    *,
    prices: PriceTable | str | None = None,
    completed_only: bool = False,
    calls_only: bool = False,
    samples: bool = True,
) -> list[RunView]:
    """Runs by id (or unique prefix), or all runs, oldest first; costs use ``prices`` (default table).

    ``calls_only``: each sample holds only what accounting reads (``Store.call_samples``): enough for
    costs and latencies, a fraction of the reading on large runs. ``samples=False``: no samples at all;
    each view's accounting and latencies are its run's stored summary (:class:`RunSummary`, written when
    the run finished), computed from the calls and stored once for a finished run that has none (a store
    written before summaries existed) or has one at other prices."""
    table = load_prices(prices)
    rows = [r for r in _rows(store, run_ids, "completed" if completed_only else None)
            if not completed_only or r["status"] == "completed"]
    ids = [r["id"] for r in rows]
    aggregates = store.all_aggregates(ids) if ids else {}
    stored = store.summaries(ids) if not samples and ids else {}
    views = []
    for row in rows:
        price = price_for(table, row["model"], row.get("model_identity"))
        subject_price = price_for(table, subject_model(row), (row.get("config") or {}).get("model_identity"))
        summary = _stored_summary(row, stored.get(row["id"]), price, subject_price) if not samples else None
        read: list[dict[str, Any]] = []
        if summary is None:
            read = store.call_samples(row["id"]) if calls_only or not samples else store.samples(row["id"])
            summary = run_summary(read, price, subject_price, duration_s=row.get("duration_s"))
            if not samples and row["status"] == "completed" and hasattr(store, "set_summary"):
                store.set_summary(row["id"], row.get("finished_at"), summary.to_row())  # once, for later reads
        judged = (row.get("kind") or "benchmark") != "benchmark"
        views.append(RunView(
            run=row, aggregates=aggregates.get(row["id"], {}), samples=read if samples else [],
            accounting=summary.accounting, answer_accounting=summary.answer_accounting if judged else None,
            _latencies={False: summary.latencies, True: summary.answer_latencies},
        ))
    return views


def by_id(views: Sequence[RunView]) -> dict[str, RunView]:
    return {v.id: v for v in views}
