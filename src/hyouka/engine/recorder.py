"""The life of a run in the store, for every kind of run (benchmark, judge, pairwise, eval).

A :class:`RunRecorder` finds the run its configuration already has (by the configuration's
hash, or by id for ``--resume``) or creates one, and *owns* it while it executes: its owner id
and a heartbeat are in the run's row, so a second process with the same command refuses
(:class:`RunBusyError`) instead of writing into a live run, and takes over a run whose owner is
gone. Samples are written in small groups (the response cache is flushed first, so every
recorded sample's calls are cached); each write refreshes the heartbeat in the same
transaction, and a timer refreshes it while no sample finishes. Leaving the ``with`` block on an
exception closes the executors' open streams (the calls in flight are waited for and cached, see
:meth:`~hyouka.engine.executor.Executor.close`), writes what is buffered and marks the run
``interrupted`` (Ctrl-C, SIGTERM, the budget) or ``failed``, with the error; a run that finishes
with failed samples stays open, so the same command completes it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.exc import IntegrityError

from hyouka.engine.accounting import price_for, run_summary
from hyouka.engine.context import current_context
from hyouka.engine.executor import Executor
from hyouka.engine.records import config_hash, package_versions
from hyouka.engine.signals import Interrupted, stop_on_signals
from hyouka.pricing.table import PriceTable, load_prices
from hyouka.store.ownership import (
    BEAT_EVERY_S,
    STALE_AFTER_S,
    describe_owner,
    new_owner_id,
    owner_gone,
    owner_process_gone,
)
from hyouka.store.schema import utcnow
from hyouka.store.store import FINISHED_STATUSES, RunOwnershipError, Store, stale_cutoff
from hyouka.store.subject import subject_model

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
FLUSH_EVERY_N = 200
_INTERRUPTIONS = ("KeyboardInterrupt", "Interrupted", "BudgetExceededError")


class RunBusyError(RuntimeError):
    """Another live process executes this run."""


class ResumeMismatchError(ValueError):
    """``--resume`` was given a configuration other than the run's own."""


def config_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: the run has X, this command Y`` for each setting that differs.

    Settings that a run stored by an earlier version lacks are skipped; inside a setting (the model
    identity, its options) every key counts.
    """
    out = []
    for key in sorted(stored.keys() & current.keys()):
        out += _differences(stored[key], current[key], key)
    return out


def _differences(old: Any, new: Any, name: str) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(old.keys() | new.keys(), key=str):
            out += _differences(old.get(key), new.get(key), f"{name}.{key}")
        return out
    return [] if old == new else [f"{name}: the run has {old!r}, this command {new!r}"]


class RunRecorder:
    """Creates or resumes one run, owns it while it executes, and writes its sample records in groups.

    ``hashed`` is the part of ``config`` that identifies the run (default: all of it) and
    ``hashed_of`` takes it from a stored run's config, to check an explicit ``resume``.
    ``reuse_completed``: when no run of this configuration is open, the latest *completed* one is
    taken up again instead of a new one (its samples are all done, so nothing is called and its
    stats are kept); the ladder's cells use it, so a ladder run again makes no second copy of a cell.
    """

    def __init__(
        self,
        store: Store,
        *,
        kind: str,
        model: str,
        task: str,
        mode: str,
        config: dict[str, Any],
        n_samples: int,
        executors: Sequence[Executor] = (),
        resume: str | None = None,
        task_version: str = "",
        task_hash: str = "",
        model_identity: dict[str, Any] | None = None,
        prices: PriceTable | str | Path | None = None,
        suite: str | None = None,
        hashed_of: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        reuse_completed: bool = False,
    ) -> None:
        self.store = store
        table = load_prices(prices)
        # the price of the calls this run records (the judge's, in a judge run)
        self.price = price_for(table, model, model_identity or {})
        # a judge run's answers are the evaluated model's calls, at its price (see RunSummary)
        subject = subject_model({"kind": kind, "model": model, "config": config})
        self._subject_price = price_for(table, subject, config.get("model_identity") or {})
        self.executors = list(executors)
        self.config = config
        self._hashed_of = hashed_of or (lambda c: c)
        self.digest = config_hash(self._hashed_of(config))
        self.owner = new_owner_id()
        self.context = current_context()  # the job this run belongs to, and its stop event (engine.context)
        existing = store.get_run(resume) if resume else store.find_run(self.digest, unfinished=True)
        if existing is not None and resume:
            self._check_same_configuration(existing)
        if existing is None and reuse_completed:
            existing = store.find_run(self.digest, unfinished=False)
        #: a completed run taken up again (``reuse_completed``): ``finish`` keeps its stats
        self.reused = existing is not None and existing.get("status") == "completed"
        self._previous_stats: dict[str, Any] = dict(existing.get("stats") or {}) if self.reused else {}
        if existing is None:
            try:
                self.run_id: str = store.create_run(
                    kind=kind, model=model, task=task, task_version=task_version, task_hash=task_hash, mode=mode,
                    suite=suite, config=config, config_hash=self.digest, model_identity=model_identity or {},
                    versions=package_versions(), n_samples=n_samples,
                    owner=self.owner, heartbeat_at=utcnow(), open_key=self.digest, job_id=self.context.job_id,
                )
            except IntegrityError:  # another process opened this configuration's run a moment ago
                existing = store.find_run(self.digest, unfinished=True)
                if existing is None:
                    raise
        if existing is not None:
            self.run_id = existing["id"]
            self._claim(existing, explicit=bool(resume))
        self.resumed = existing is not None
        self._previous_s = float(existing.get("duration_s") or 0.0) if existing else 0.0
        self.done: set[int] = store.finished_indices(self.run_id) if existing is not None else set()
        self._buffer: list[dict[str, Any]] = []
        self._added = 0
        self._last_flush = self._last_beat = time.monotonic()
        self._started = time.perf_counter()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._signals = stop_on_signals()
        self._beater = threading.Thread(target=self._beat_loop, name=f"hyouka-heartbeat-{self.run_id}", daemon=True)
        self._beater.start()

    # -- owning the run -------------------------------------------------------------------------
    def _check_same_configuration(self, existing: dict[str, Any]) -> None:
        stored = self._hashed_of(existing.get("config") or {})
        differences = config_differences(stored, self._hashed_of(self.config))
        if differences:
            raise ResumeMismatchError(
                f"run {existing['id']} cannot be resumed with this configuration: " + "; ".join(differences)
                + ". Resume it with the settings it was made with, or drop --resume to start a new run"
            )

    def _claim(self, existing: dict[str, Any], *, explicit: bool) -> None:
        owner, beat = existing.get("owner"), existing.get("heartbeat_at")
        busy = RunBusyError(
            f"run {existing['id']} ({existing['task']}) is being executed by another process "
            f"({describe_owner(owner, beat) if owner else 'it has just claimed it'}); wait for it to finish or "
            f"stop it. A run whose owner is gone (no heartbeat for {STALE_AFTER_S:.0f} s) is taken over "
            "by the next command"
        )
        if owner is not None and not owner_gone(owner, beat):
            raise busy
        # a dead process on this host cannot beat again; an owner elsewhere is gone only while its beat is stale
        stale_before = None if owner is None or owner_process_gone(owner) else stale_cutoff(STALE_AFTER_S)
        fields: dict[str, Any] = {"status": "running", "error": None}
        if self.context.job_id is not None:  # a job that resumes the run makes it its own
            fields["job_id"] = self.context.job_id
        if existing.get("open_key") is None and existing.get("status") != "completed" and not explicit:
            fields["open_key"] = self.digest  # a run left unfinished by an earlier version
        if not self.store.claim_run(existing["id"], self.owner, seen_owner=owner, stale_before=stale_before,
                                    **fields):
            raise busy

    def _beat_loop(self) -> None:
        while not self._stop.wait(BEAT_EVERY_S / 2):
            if time.monotonic() - self._last_beat < BEAT_EVERY_S:
                continue
            try:
                if not self.store.beat(self.run_id, self.owner):
                    self._lost.set()
                    return
                self._last_beat = time.monotonic()
            except Exception as exc:  # a locked or unreachable store: try again on the next beat
                log.warning("heartbeat of run %s failed: %s", self.run_id, exc)

    def _stop_beating(self) -> None:
        self._stop.set()
        if self._beater.is_alive() and self._beater is not threading.current_thread():
            self._beater.join(timeout=5)

    # -- samples ------------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        """Queue one finished sample (priced: ``cost_usd``); written within about a second.

        Raises :class:`~hyouka.engine.signals.Interrupted` once the run's context asks it to stop
        (an agent handing its job back): this sample is kept, and the run is recorded interrupted.
        """
        if "cost_usd" not in record:
            from hyouka.engine.accounting import sample_cost

            record["cost_usd"] = sample_cost(self.price.price if self.price else None, record.get("responses") or [])
        self._buffer.append(record)
        self._added += 1
        if self.context.stopping:
            raise Interrupted(signal.SIGTERM)
        if len(self._buffer) >= FLUSH_EVERY_N or time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Write the buffered samples (after the response cache), refreshing the heartbeat in the same transaction."""
        if self._lost.is_set():
            raise RunOwnershipError(f"run {self.run_id} was taken over by another process; this one stops writing")
        for executor in self.executors:
            executor.flush()  # cache first: a recorded sample's answers are always cached
        if self._buffer:
            self.store.write_samples(self.run_id, self._buffer, replace=self.resumed, owner=self.owner)
            self._buffer.clear()
            self._last_beat = time.monotonic()
        self._last_flush = time.monotonic()

    def samples(self) -> list[dict[str, Any]]:
        self.flush()
        return self.store.samples(self.run_id)

    @property
    def duration_s(self) -> float:
        return self._previous_s + time.perf_counter() - self._started

    # -- the end ------------------------------------------------------------------------------
    def finish(
        self,
        aggregates: Sequence[dict[str, Any]],
        stats: dict[str, Any],
        samples: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Write the aggregates and mark the run completed, with ``stats["accounting"]`` of all its samples and,
        in the same transaction, the run's summary (:class:`~hyouka.engine.accounting.RunSummary`) that the
        leaderboard reads instead of the samples.

        ``samples`` (what accounting reads: statuses and responses) spares reading them back. A run
        with samples whose calls failed stays open: the same command retries them in this run.
        """
        self.flush()
        if self.reused and not self._added:
            stats = self._previous_stats or stats  # nothing new was run: the run's own numbers stand
        duration = self.duration_s if not (self.reused and not self._added) else self._previous_s
        if samples is None:
            samples = self.store.samples(self.run_id)
        # computed once, here: what the leaderboard reads of the run's calls (hyouka.engine.accounting.RunSummary)
        summary = run_summary(samples, self.price, self._subject_price, duration_s=duration,
                              accounting=stats.get("accounting"))
        if "accounting" not in stats:
            stats = {**stats, "accounting": summary.accounting}
        if not self.store.beat(self.run_id, self.owner):
            raise RunOwnershipError(f"run {self.run_id} was taken over by another process; this one stops writing")
        self.store.set_aggregates(self.run_id, aggregates)
        left = any(s["status"] not in FINISHED_STATUSES for s in samples)
        fields = {"status": "completed", "finished_at": utcnow(), "duration_s": duration, "stats": stats,
                  "error": None}
        self._stop_beating()
        row = summary.to_row()
        try:
            self.store.release_run(self.run_id, self.owner, open_key=self.digest if left else None, summary=row,
                                   **fields)
        except IntegrityError:  # an explicit resume of an old run while another is open: it stays closed
            self.store.release_run(self.run_id, self.owner, open_key=None, summary=row, **fields)

    def __enter__(self) -> RunRecorder:
        self._signals.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._signals.__exit__(exc_type, exc, tb)
        if exc is None:
            self._stop_beating()
            return
        self._record_failure(exc)

    def _record_failure(self, exc: BaseException) -> None:
        """Write what is buffered and mark the run interrupted or failed; never hides ``exc``."""
        self._stop_beating()
        if isinstance(exc, RunOwnershipError):
            return  # the run is another process's now: touch nothing
        error = f"{type(exc).__name__}: {exc}"
        for executor in self.executors:  # calls in flight are waited for and cached: they were paid for
            try:
                executor.close()
            except Exception as close_exc:
                log.warning("run %s: closing the calls in flight failed: %s", self.run_id, close_exc)
        try:
            self.flush()
        except BaseException as flush_exc:
            error += f" (and the last samples could not be written: {type(flush_exc).__name__}: {flush_exc})"
        status = "interrupted" if type(exc).__name__ in _INTERRUPTIONS or isinstance(exc, KeyboardInterrupt) \
            else "failed"
        try:
            self.store.release_run(self.run_id, self.owner, status=status, error=error, duration_s=self.duration_s)
        except Exception as mark_exc:
            log.error("run %s could not be marked %s: %s", self.run_id, status, mark_exc)
