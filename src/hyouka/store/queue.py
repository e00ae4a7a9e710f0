"""The job queue in the results store: jobs, their leases, and what happened to them.

A job moves ``queued → leased → running → succeeded | failed | cancelled``. An agent *leases* a job
for ``lease_seconds`` and keeps the lease alive with heartbeats; a lease whose heartbeat stops
(the agent was killed) expires, and the next agent to ask takes the job over (attempt 2, …) —
the job's run resumes from the store, so no finished sample is paid again. Leasing takes the
highest priority, oldest job that fits the agent's free GPUs and CPUs: on PostgreSQL with
``SELECT … FOR UPDATE SKIP LOCKED`` (agents never wait on each other's rows), on SQLite inside an
immediate transaction (``BEGIN IMMEDIATE``: one leaser at a time). Every change is also written as
an event (``hyouka jobs logs``). The tables share the store's engine; :class:`JobQueue` creates them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hyouka.store.schema import Base, utcnow
from hyouka.store.store import Store

__all__ = ["ACTIVE", "FINISHED", "JobNotFoundError", "JobQueue", "JobStateError"]

ACTIVE = ("queued", "leased", "running")
HELD = ("leased", "running")
FINISHED = ("succeeded", "failed", "cancelled")
STATES = (*ACTIVE, *FINISHED)
PHASES = ("load", "data", "model call", "scoring", "agent")


class JobNotFoundError(LookupError):
    """No job by that id (or prefix)."""


class JobStateError(ValueError):
    """The job is not in a state that allows this (e.g. cancelling a finished job)."""


class JobRow(Base):
    """One job: its frozen spec, where it may run, its lease and its outcome."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("spec_hash", "submission"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec_hash: Mapped[str] = mapped_column(String(64))
    submission: Mapped[int] = mapped_column(Integer, default=1)  # 2, 3…: forced resubmissions of one spec
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(512))
    tasks: Mapped[str] = mapped_column(String(1024))
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    num_gpus: Mapped[float] = mapped_column(Float, default=0.0)
    num_cpus: Mapped[float] = mapped_column(Float, default=1.0)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # not leased before
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)  # who holds the lease
    leased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times leased
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    progress: Mapped[str | None] = mapped_column(String(256), nullable=True)
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)  # where a failed job failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobEventRow(Base):
    """Something that happened to a job: submitted, leased, started, a lease expired, finished…"""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


Index("ix_jobs_lease", JobRow.queue, JobRow.state, JobRow.priority, JobRow.created_at)
Index("ix_jobs_spec_hash", JobRow.spec_hash)
_TABLES = [JobRow.__table__, JobEventRow.__table__]


def _as_dict(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def _fits(gpus: float, cpus: float) -> list[Any]:
    """Conditions for jobs that need no more than ``gpus`` and ``cpus`` (infinite: any)."""
    out = [] if gpus == float("inf") else [JobRow.num_gpus <= gpus]
    return out if cpus == float("inf") else [*out, JobRow.num_cpus <= cpus]


class JobQueue:
    """Submit, lease, heartbeat, finish, cancel and retry jobs in a :class:`~hyouka.store.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dialect = store.engine.dialect.name
        store.create_tables(_TABLES)

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A transaction that holds the write lock from its start on SQLite (``BEGIN IMMEDIATE``).

        Reads inside it see every committed lease, so two agents never pick the same job; other
        databases lock the rows they pick instead (``FOR UPDATE SKIP LOCKED`` in :meth:`lease`).
        """
        with self.store.session() as s:
            if self.dialect == "sqlite":
                s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    @staticmethod
    def _event(s: Session, job_id: str, event: str, detail: str | None = None, agent: str | None = None) -> None:
        s.add(JobEventRow(job_id=job_id, event=event, detail=detail, agent=agent, at=utcnow()))

    # -- submitting -----------------------------------------------------------------------------
    def submit(
        self, spec: dict[str, Any], spec_hash: str, *, queue: str, priority: int = 0, num_gpus: float = 0.0,
        num_cpus: float = 1.0, force: bool = False, max_attempts: int = 3,
    ) -> tuple[dict[str, Any], bool]:
        """The job for this spec, and whether it was created now.

        The same spec submitted again is the job already there (whatever its state); ``force``
        makes a new job of it (``submission`` 2, 3…), to run it again.
        """
        for _ in range(5):
            with self.store.session() as s:
                latest = s.scalars(select(JobRow).where(JobRow.spec_hash == spec_hash)
                                   .order_by(JobRow.submission.desc())).first()
                if latest is not None and not force:
                    return _as_dict(latest), False
                row = JobRow(
                    id=uuid.uuid4().hex[:12], spec_hash=spec_hash, submission=(latest.submission + 1) if latest else 1,
                    spec=spec, model=str(spec.get("model", "")), tasks=",".join(spec.get("tasks") or ()),
                    queue=queue, priority=priority, num_gpus=num_gpus, num_cpus=num_cpus, state="queued",
                    max_attempts=max_attempts, created_at=utcnow(), available_at=utcnow(), run_ids=[], summary={},
                )
                s.add(row)
                try:
                    s.flush()  # the job row before its event (the event's key refers to it)
                except IntegrityError:  # another process submitted the same spec a moment ago: look again
                    s.rollback()
                    continue
                detail = f"queue {queue}, priority {priority}" + (f", resubmission {row.submission}" if latest else "")
                self._event(s, row.id, "submitted", detail)
                s.commit()
                return _as_dict(row), True
        raise RuntimeError(f"could not submit the job of spec {spec_hash[:12]}: too many concurrent submissions")

    # -- leasing --------------------------------------------------------------------------------
    def lease(
        self, queue: str, agent: str, *, lease_seconds: float, gpus: float = 0.0, cpus: float = float("inf"),
        start: bool = False,
    ) -> dict[str, Any] | None:
        """Lease the next job of ``queue`` that fits ``gpus`` and ``cpus`` to ``agent``, or ``None``.

        A job whose lease expired (its agent stopped beating) is taken over; one that has used
        all its attempts that way is failed instead (phase ``agent``). ``start`` also marks it
        running, in the same transaction (an agent that starts what it leases at once).
        """
        while True:
            with self._write() as s:
                now = utcnow()
                query = (
                    select(JobRow)
                    .where(JobRow.queue == queue, *_fits(gpus, cpus))
                    .where(or_(
                        (JobRow.state == "queued") & (JobRow.available_at <= now),
                        JobRow.state.in_(HELD) & (JobRow.lease_expires_at < now),
                    ))
                    .order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id)
                    .limit(1)
                )
                if self.dialect != "sqlite":
                    query = query.with_for_update(skip_locked=True)
                row = s.scalars(query).first()
                if row is None:
                    return None
                if row.state in HELD:  # its agent is gone
                    self._event(s, row.id, "lease expired", f"no heartbeat from {row.agent} since "
                                f"{row.heartbeat_at}", agent=row.agent)
                    if row.attempts >= row.max_attempts:
                        row.state, row.phase, row.finished_at, row.agent = "failed", "agent", now, None
                        row.error = (f"its agent stopped (lease expired) on each of {row.attempts} attempts; "
                                     "`hyouka jobs retry` queues it again")
                        self._event(s, row.id, "failed", row.error)
                        continue  # commits, then looks for another job
                row.state, row.agent, row.attempts = "leased", agent, row.attempts + 1
                row.leased_at = row.heartbeat_at = now
                row.lease_expires_at = now + timedelta(seconds=lease_seconds)
                row.progress = None
                self._event(s, row.id, "leased", f"attempt {row.attempts}, lease {lease_seconds:g} s", agent=agent)
                if start:
                    row.state, row.started_at = "running", row.started_at or now
                    self._event(s, row.id, "running", None, agent)
                s.flush()
                return _as_dict(row)

    def _held(self, s: Session, job_id: str, agent: str) -> JobRow | None:
        row = s.get(JobRow, job_id)
        return row if row is not None and row.agent == agent and row.state in HELD else None

    def start(self, job_id: str, agent: str) -> bool:
        """Mark a leased job running; False when ``agent`` no longer holds it."""
        with self.store.session() as s, s.begin():
            row = self._held(s, job_id, agent)
            if row is None:
                return False
            row.state, row.started_at = "running", row.started_at or utcnow()
            self._event(s, job_id, "running", None, agent)
            return True

    def heartbeat(
        self, agent: str, job_ids: Iterable[str], *, lease_seconds: float, progress: dict[str, str] | None = None,
    ) -> set[str]:
        """Extend ``agent``'s leases of ``job_ids``; returns those it still holds (the others were
        cancelled or taken over)."""
        ids = list(job_ids)
        if not ids:
            return set()
        now = utcnow()
        expires = now + timedelta(seconds=lease_seconds)
        with self.store.session() as s, s.begin():
            held = JobRow.agent == agent, JobRow.state.in_(HELD)
            s.execute(sql_update(JobRow).where(JobRow.id.in_(ids), *held)
                      .values(heartbeat_at=now, lease_expires_at=expires))
            for job_id, text in (progress or {}).items():
                s.execute(sql_update(JobRow).where(JobRow.id == job_id, *held).values(progress=text[:256]))
            return set(s.scalars(select(JobRow.id).where(JobRow.id.in_(ids), *held)))

    def finish(
        self, job_id: str, agent: str, state: str, *, phase: str | None = None, error: str | None = None,
        run_ids: Sequence[str] = (), summary: dict[str, Any] | None = None,
    ) -> bool:
        """Record a held job's outcome (succeeded or failed, with the phase and error); False when
        ``agent`` no longer holds it (its outcome is then not written)."""
        if state not in ("succeeded", "failed"):
            raise ValueError(f"a job finishes succeeded or failed, not {state!r}")
        if phase is not None and phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; phases: {', '.join(PHASES)}")
        with self.store.session() as s, s.begin():
            row = self._held(s, job_id, agent)
            if row is None:
                return False
            row.state, row.phase, row.error, row.finished_at = state, phase, error, utcnow()
            row.run_ids, row.summary = list(run_ids), summary or {}
            row.agent = row.lease_expires_at = None
            self._event(s, job_id, state, f"{phase}: {error}" if error else f"runs {', '.join(run_ids)}", agent)
            return True

    def release(self, job_id: str, agent: str, reason: str, *, delay_s: float = 0.0, count: bool = False,
                run_ids: Sequence[str] = ()) -> bool:
        """Hand a held job back to the queue (an agent stopping, a busy run), leasable again after
        ``delay_s``; the attempt counts only with ``count``."""
        with self.store.session() as s, s.begin():
            row = self._held(s, job_id, agent)
            if row is None:
                return False
            row.state, row.agent, row.lease_expires_at, row.progress = "queued", None, None, None
            row.available_at = utcnow() + timedelta(seconds=delay_s)
            if not count:
                row.attempts = max(0, row.attempts - 1)
            if run_ids:
                row.run_ids = list(run_ids)
            self._event(s, job_id, "handed back", reason, agent)
            return True

    # -- people's commands ----------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job that has not finished; an agent running it stops at its next heartbeat."""
        with self.store.session() as s, s.begin():
            row = self._find(s, job_id)
            if row.state in FINISHED:
                raise JobStateError(f"job {row.id} has {row.state} already; nothing to cancel")
            was = row.state
            row.state, row.finished_at, row.lease_expires_at = "cancelled", utcnow(), None
            self._event(s, row.id, "cancelled", f"was {was}" + (f" on {row.agent}" if row.agent else ""))
            row.agent = None
            return _as_dict(row)

    def retry(self, job_id: str) -> dict[str, Any]:
        """Queue a failed or cancelled job again, with fresh attempts (its run resumes where it stopped)."""
        with self.store.session() as s, s.begin():
            row = self._find(s, job_id)
            if row.state not in ("failed", "cancelled"):
                hint = " (`hyouka submit --force` runs a finished spec again)" if row.state == "succeeded" else ""
                raise JobStateError(f"job {row.id} is {row.state}; only failed or cancelled jobs are retried{hint}")
            row.state, row.attempts, row.phase, row.error, row.finished_at = "queued", 0, None, None, None
            row.available_at = utcnow()
            self._event(s, row.id, "retried", None)
            return _as_dict(row)

    # -- reading --------------------------------------------------------------------------------
    def _find(self, s: Session, job_id: str) -> JobRow:
        row = s.get(JobRow, job_id)
        if row is not None:
            return row
        rows = s.scalars(select(JobRow).where(JobRow.id.startswith(job_id)).limit(2)).all()
        if len(rows) == 1:
            return rows[0]
        what = "no job" if not rows else "more than one job"
        raise JobNotFoundError(f"{what} matches {job_id!r} in {self.store.url}; `hyouka jobs` lists them")

    def get(self, job_id: str) -> dict[str, Any]:
        """A job by id or unique prefix."""
        with self.store.session() as s:
            return _as_dict(self._find(s, job_id))

    def list(self, *, queue: str | None = None, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Jobs, oldest first."""
        with self.store.session() as s:
            query = select(JobRow).order_by(JobRow.created_at, JobRow.id)
            if queue:
                query = query.where(JobRow.queue == queue)
            if states:
                query = query.where(JobRow.state.in_(list(states)))
            return [_as_dict(r) for r in s.scalars(query)]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """What happened to a job, in order."""
        with self.store.session() as s:
            row = self._find(s, job_id)
            rows = s.scalars(select(JobEventRow).where(JobEventRow.job_id == row.id).order_by(JobEventRow.id))
            return [_as_dict(r) for r in rows]

    def pending(self, queue: str, *, gpus: float = 0.0, cpus: float = float("inf")) -> int:
        """Jobs of ``queue`` that fit these resources and have not finished (queued, leased or running)."""
        with self.store.session() as s:
            query = select(JobRow.id).where(JobRow.queue == queue, JobRow.state.in_(ACTIVE), *_fits(gpus, cpus))
            return len(s.scalars(query).all())

    def unfit(self, queue: str, *, gpus: float, cpus: float) -> list[dict[str, Any]]:
        """Queued jobs of ``queue`` that need more than ``gpus`` or ``cpus`` (an agent here refuses them)."""
        with self.store.session() as s:
            query = select(JobRow).where(JobRow.queue == queue, JobRow.state == "queued",
                                         or_(JobRow.num_gpus > gpus, JobRow.num_cpus > cpus))
            return [_as_dict(r) for r in s.scalars(query)]
