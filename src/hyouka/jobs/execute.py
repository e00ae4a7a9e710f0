"""Run one job in this process: its spec through :func:`hyouka.run`, the one runner every run takes.

The run is an ordinary run (owned, resumable, accounted), made inside
:func:`~hyouka.engine.context.run_context` so it carries the job id and stops when the agent asks.
:func:`run_job` never raises for the job's own failures: it returns a :class:`JobOutcome` saying
whether the job succeeded, failed (in which phase: ``load``, ``data``, ``model call``, ``scoring``),
was interrupted (handed back) or found its run busy in another live process.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hyouka.engine.context import run_context
from hyouka.store.store import Store

OutcomeState = Literal["succeeded", "failed", "interrupted", "busy"]
_ANSWERED = frozenset({"ok", "format_error", "parse_error"})  # statuses whose call gave an answer


@dataclass
class JobOutcome:
    """How a job's execution ended, and the runs it made (picklable: it returns from Ray tasks too)."""

    state: OutcomeState
    phase: str | None = None
    error: str | None = None
    run_ids: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class _Phases:
    """Where a job is, read from the runner's progress: before any task starts, loading (or reading
    data); while samples are missing, calling the model; once all are in, scoring."""

    def __init__(self, report: Callable[[str], None] | None) -> None:
        self.phase = "load"
        self.report = report
        self.lock = threading.Lock()

    def factory(self, task: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            with self.lock:
                self.phase = "scoring" if done >= total else "model call"
            if self.report is not None:
                self.report(f"{task} {done}/{total}")

        return update


def _phase_of(exc: BaseException, phase: str) -> str:
    from hyouka.tasks.loaders import DataError
    from hyouka.tasks.registry import UnknownTaskError
    from hyouka.tasks.spec import TaskFileError

    if phase == "load" and isinstance(exc, (DataError, UnknownTaskError, TaskFileError)):
        return "data"
    return phase


def _where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _summary(result: Any) -> dict[str, Any]:
    runs = [{"run_id": r.run_id, "task": r.task, "n_samples": r.n_samples, "model_calls": r.model_calls,
             "cache_hits": r.cache_hits, "statuses": dict(r.extra.get("statuses") or {}),
             "metrics": {name: agg.get("value") for name, agg in r.aggregates.items()}} for r in result.runs]
    suites = {name: info.get("score") for name, info in result.suite_scores.items()}
    return {"runs": runs, "suites": suites, "skipped": dict(result.skipped), "ran_on": _where()}


def _failed_calls(result: Any, store: Store) -> str | None:
    """``3 of 20 samples' calls failed (api_error: 3); the first error: …`` or ``None``."""
    failed: dict[str, int] = {}
    total = 0
    first_run = None
    for r in result.runs:
        for status, n in (r.extra.get("statuses") or {}).items():
            total += n
            if status not in _ANSWERED:
                failed[status] = failed.get(status, 0) + n
                first_run = first_run or r.run_id
    if not failed:
        return None
    detail = ", ".join(f"{status}: {n}" for status, n in sorted(failed.items()))
    errors = [s["error"] for s in store.samples(first_run) if s["status"] not in _ANSWERED and s.get("error")]
    reason = f"; the first error: {errors[0]}" if errors else ""
    return (f"{sum(failed.values())} of {total} samples' calls failed ({detail}){reason}; "
            "`hyouka jobs retry` resumes the run and calls only those again")


def _job_run_ids(store: Store, job_id: str) -> list[str]:
    return [r["id"] for r in store.list_runs() if r.get("job_id") == job_id]


def run_job(
    spec_data: dict[str, Any],
    job_id: str,
    *,
    store: Store | str | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
) -> JobOutcome:
    """Execute the job ``job_id`` (its spec's manifest ``spec_data``) and say how it ended."""
    from hyouka.api import run
    from hyouka.engine.budget import BudgetExceededError
    from hyouka.engine.recorder import RunBusyError
    from hyouka.jobs.spec import JobSpec

    phases = _Phases(progress)
    the_store: Store | None = None
    try:
        spec = JobSpec.model_validate(spec_data)
        the_store = store if isinstance(store, Store) else Store(store)
        with run_context(job_id, stop):
            result = run(spec.model, list(spec.tasks), store=the_store, cache=spec.cache, prices=spec.price_table(),
                         progress=phases.factory, **spec.run_arguments())
    except RunBusyError as exc:
        return JobOutcome("busy", error=str(exc))
    except BudgetExceededError as exc:
        return JobOutcome("failed", phase="model call", error=f"budget: {exc}", run_ids=_ids(the_store, job_id))
    except KeyboardInterrupt as exc:  # the agent's stop (engine.context), SIGINT, or ray.cancel
        return JobOutcome("interrupted", error=f"{type(exc).__name__}: {exc}", run_ids=_ids(the_store, job_id))
    except Exception as exc:
        tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]).strip()
        return JobOutcome("failed", phase=_phase_of(exc, phases.phase), error=f"{type(exc).__name__}: {exc}\n{tail}",
                          run_ids=_ids(the_store, job_id))
    run_ids = [r.run_id for r in result.runs]
    summary = _summary(result)
    failed = _failed_calls(result, the_store)
    if failed:
        return JobOutcome("failed", phase="model call", error=failed, run_ids=run_ids, summary=summary)
    return JobOutcome("succeeded", run_ids=run_ids, summary=summary)


def _ids(store: Store | None, job_id: str) -> list[str]:
    try:
        return _job_run_ids(store, job_id) if store is not None else []
    except Exception:  # an unreachable store: the outcome says what it can
        return []
