"""An agent: a long-running process that leases jobs from one queue, runs them, and reports.

It runs up to ``max_jobs`` jobs at once, each within the GPUs and CPUs left of its machine (or Ray
cluster): jobs that need more than the machine has are refused, left for an agent that can run
them. A heartbeat thread extends its leases; a lease it lost (the job was cancelled, or taken over
after a stall) stops that job. On SIGTERM or Ctrl-C it takes no more jobs, stops the running ones
at their next sample (their runs are recorded interrupted, keeping every finished sample) and hands
their leases back, so the next agent resumes them paying nothing again. Jobs run in threads of this
process (:class:`LocalRunner`), or as Ray tasks with the job's resources
(:class:`hyouka.jobs.ray_cluster.RayRunner`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from hyouka.jobs.execute import JobOutcome, run_job
from hyouka.jobs.resources import Capacity, machine_capacity
from hyouka.store.ownership import STALE_AFTER_S, new_owner_id
from hyouka.store.queue import JobQueue
from hyouka.store.store import Store

log = logging.getLogger(__name__)
BUSY_RETRY_S = min(30.0, STALE_AFTER_S / 2)  # a job whose run another live process holds waits this long


class JobHandle(Protocol):
    """One job being executed."""

    def done(self) -> bool: ...

    def outcome(self) -> JobOutcome: ...

    def stop(self) -> None: ...

    @property
    def progress(self) -> str | None: ...


class JobRunner(Protocol):
    """Where jobs execute: threads here, or Ray tasks."""

    capacity: Capacity

    def start(self, job: dict[str, Any], store_url: str) -> JobHandle: ...

    def wait(self, handles: Sequence[JobHandle], timeout: float) -> None: ...


class _ThreadHandle:
    def __init__(self, job: dict[str, Any], store: Store, finished: threading.Event) -> None:
        self._stop = threading.Event()
        self._outcome: JobOutcome | None = None
        self._progress: str | None = None
        self._finished = finished
        self._thread = threading.Thread(target=self._run, args=(job, store), name=f"hyouka-job-{job['id']}",
                                        daemon=True)
        self._thread.start()

    def _run(self, job: dict[str, Any], store: Store) -> None:
        try:
            self._outcome = run_job(job["spec"], job["id"], store=store, stop=self._stop, progress=self._report)
        except BaseException as exc:  # run_job reports the job's failures; this is the agent's own
            self._outcome = JobOutcome("failed", phase="agent", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._finished.set()

    def _report(self, text: str) -> None:
        self._progress = text

    @property
    def progress(self) -> str | None:
        return self._progress

    def done(self) -> bool:
        return self._outcome is not None

    def outcome(self) -> JobOutcome:
        assert self._outcome is not None
        return self._outcome

    def stop(self) -> None:
        self._stop.set()


class LocalRunner:
    """Jobs in threads of this process, sharing one store connection pool."""

    def __init__(self, capacity: Capacity | None = None) -> None:
        self.capacity = capacity or machine_capacity()
        self._finished = threading.Event()
        self._stores: dict[str, Store] = {}

    def start(self, job: dict[str, Any], store_url: str) -> JobHandle:
        store = self._stores.get(store_url) or self._stores.setdefault(store_url, Store(store_url))
        return _ThreadHandle(job, store, self._finished)

    def wait(self, handles: Sequence[JobHandle], timeout: float) -> None:
        if any(h.done() for h in handles):
            return
        self._finished.wait(timeout)
        self._finished.clear()


@dataclass
class _Slot:
    job: dict[str, Any]
    handle: JobHandle
    lost: bool = False  # the lease is gone (cancelled, taken over): the outcome is not ours to write


@dataclass
class AgentReport:
    """What an agent did before it stopped."""

    agent: str
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    handed_back: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    stopped_by: str | None = None


class Agent:
    """Leases jobs of ``queue`` and runs them with ``runner`` until stopped (or, ``until_empty``, until the
    queue holds no job this machine can run)."""

    def __init__(
        self,
        store: Store | str | None,
        queue: str,
        *,
        max_jobs: int = 1,
        lease_seconds: float = 60.0,
        until_empty: bool = False,
        poll_seconds: float = 1.0,
        runner: JobRunner | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs must be at least 1, got {max_jobs}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.store = store if isinstance(store, Store) else Store(store)
        self.jobs = JobQueue(self.store)
        self.queue = queue
        self.max_jobs = max_jobs
        self.lease_seconds = lease_seconds
        self.until_empty = until_empty
        self.poll_seconds = poll_seconds
        self.runner: JobRunner = runner or LocalRunner()
        self.say = say or (lambda text: log.info("%s", text))
        self.id = "agent:" + new_owner_id()
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stop_reason: str | None = None
        self.report = AgentReport(self.id)

    # -- stopping -------------------------------------------------------------------------------
    def stop(self, reason: str = "asked to stop") -> None:
        """Take no more jobs; interrupt the running ones, whose leases are then handed back."""
        if not self._stopping.is_set():
            self._stop_reason = reason
            self._stopping.set()
        with self._lock:
            for slot in self._slots.values():
                slot.handle.stop()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(f"stopped by {signal.Signals(signum).name}")

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> AgentReport:
        """Work until stopped; returns what was done. Leases still held on the way out are handed back."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        beater = threading.Thread(target=self._beat_loop, name="hyouka-agent-heartbeat", daemon=True)
        beater.start()
        self._refuse_unfit()
        try:
            self._loop()
        finally:
            self._stopping.set()
            beater.join(timeout=10)
            self._hand_back_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
        self.report.stopped_by = self._stop_reason
        return self.report

    def _free(self) -> Capacity:
        free = self.runner.capacity
        for slot in self._slots.values():
            free = free.minus(slot.job["num_gpus"], slot.job["num_cpus"])
        return free

    def _refuse_unfit(self) -> None:
        cap = self.runner.capacity
        unfit = self.jobs.unfit(self.queue, gpus=cap.gpus, cpus=cap.cpus)
        if unfit:
            needs = sorted({f"{j['num_gpus']:g} GPUs, {j['num_cpus']:g} CPUs" for j in unfit})
            self.say(f"refusing {len(unfit)} job(s) of queue {self.queue} that need more than this machine has "
                     f"({cap.describe()}): they need {'; '.join(needs)}")

    def _loop(self) -> None:
        while True:
            self._reap()
            if self._stopping.is_set():
                if not self._slots:
                    return
            else:
                self._fill()
                if self.until_empty and not self._slots:
                    cap = self.runner.capacity
                    if self.jobs.pending(self.queue, gpus=cap.gpus, cpus=cap.cpus) == 0:
                        self._stop_reason = "the queue is empty"
                        return
            handles = [slot.handle for slot in self._slots.values()]
            if handles:
                self.runner.wait(handles, self.poll_seconds)
            else:
                self._stopping.wait(self.poll_seconds)

    def _fill(self) -> None:
        while len(self._slots) < self.max_jobs and not self._stopping.is_set():
            free = self._free()
            job = self.jobs.lease(self.queue, self.id, lease_seconds=self.lease_seconds, gpus=free.gpus,
                                  cpus=free.cpus, start=True)
            if job is None:
                return
            self.say(f"job {job['id']}: {job['model']} on {job['tasks']} (attempt {job['attempts']}) started")
            handle = self.runner.start(job, self.store.url)
            with self._lock:
                self._slots[job["id"]] = _Slot(job, handle)

    def _reap(self) -> None:
        for job_id, slot in list(self._slots.items()):
            if not slot.handle.done():
                continue
            with self._lock:
                del self._slots[job_id]
            self._record(slot, slot.handle.outcome())

    def _record(self, slot: _Slot, outcome: JobOutcome) -> None:
        job_id = slot.job["id"]
        if slot.lost:
            self.report.lost.append(job_id)
            self.say(f"job {job_id}: its lease was lost (cancelled or taken over); its outcome is not written")
            return
        if outcome.state in ("succeeded", "failed"):
            written = self.jobs.finish(job_id, self.id, outcome.state, phase=outcome.phase, error=outcome.error,
                                       run_ids=outcome.run_ids, summary=outcome.summary)
            if written:
                (self.report.succeeded if outcome.state == "succeeded" else self.report.failed).append(job_id)
                where = f" in phase {outcome.phase}: {outcome.error.splitlines()[0]}" if outcome.error else ""
                self.say(f"job {job_id} {outcome.state}{where} (runs {', '.join(outcome.run_ids) or 'none'})")
            return
        busy = outcome.state == "busy"
        reason = outcome.error or outcome.state
        if not busy and self._stopping.is_set():
            reason = f"{self._stop_reason}: {reason}"
        if self.jobs.release(job_id, self.id, reason, delay_s=BUSY_RETRY_S if busy else 0.0,
                             count=not busy and not self._stopping.is_set(), run_ids=outcome.run_ids):
            self.report.handed_back.append(job_id)
            self.say(f"job {job_id} handed back: {reason.splitlines()[0]}")

    def _hand_back_all(self) -> None:
        """On the way out: wait briefly for stopped jobs, record what ended, hand back the rest."""
        deadline = time.monotonic() + 30
        while self._slots and time.monotonic() < deadline:
            self._reap()
            if self._slots:
                self.runner.wait([s.handle for s in self._slots.values()], 0.5)
        for job_id, slot in list(self._slots.items()):
            if not slot.lost:
                self.jobs.release(job_id, self.id, f"the agent stopped ({self._stop_reason})")
                self.report.handed_back.append(job_id)
        self._slots.clear()

    def _beat_loop(self) -> None:
        every = max(0.2, self.lease_seconds / 3)
        while True:
            if self._stopping.is_set():  # beat on while stopped jobs wind down, then end
                if not self._slots:
                    return
                time.sleep(every)
            else:
                self._stopping.wait(every)
            with self._lock:
                slots = {job_id: s for job_id, s in self._slots.items() if not s.lost}
            if not slots:
                continue
            progress = {job_id: s.handle.progress for job_id, s in slots.items() if s.handle.progress}
            try:
                held = self.jobs.heartbeat(self.id, slots, lease_seconds=self.lease_seconds, progress=progress)
            except Exception as exc:  # an unreachable store: the lease lasts until it expires
                log.warning("agent heartbeat failed: %s", exc)
                continue
            for job_id, slot in slots.items():
                if job_id not in held:
                    slot.lost = True
                    slot.handle.stop()
