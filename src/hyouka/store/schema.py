"""Tables of the results store: runs, their samples, and their aggregates."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    """One evaluation of one model on one task with one configuration."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|completed|interrupted|failed
    kind: Mapped[str] = mapped_column(String(16), default="benchmark")  # benchmark|judge|pairwise
    model: Mapped[str] = mapped_column(String(512))
    task: Mapped[str] = mapped_column(String(256))
    task_version: Mapped[str] = mapped_column(String(32), default="")
    task_hash: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str] = mapped_column(String(32), default="")
    suite: Mapped[str | None] = mapped_column(String(128), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    model_identity: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    n_samples: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # who executes the run now (hyouka.store.ownership.new_owner_id) and when it last said so;
    # both empty while nobody does
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the configuration hash while the run has work left (unfinished, or finished with failed
    # samples), else empty: its unique index lets a store hold one open run per configuration
    open_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the queued job (hyouka.store.queue) whose agent executed the run last, if any
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class SampleRow(Base):
    """One scored document of a run: prompt, output, answer, gold, metrics, status, cost."""

    __tablename__ = "samples"
    # the unique (run_id, sample_index) index also serves lookups by run_id: no second index to update
    __table_args__ = (UniqueConstraint("run_id", "sample_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    sample_index: Mapped[int] = mapped_column(Integer)
    doc_id: Mapped[str] = mapped_column(String(256))
    doc: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prompt: Mapped[str] = mapped_column(Text, default="")
    requests: Mapped[list[Any]] = mapped_column(JSON, default=list)
    responses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    extracted: Mapped[str | None] = mapped_column(Text, nullable=True)
    prediction: Mapped[Any] = mapped_column(JSON, nullable=True)
    reference: Mapped[Any] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="ok")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


class AggregateRow(Base):
    """A metric over a run's samples, with its uncertainty and coverage."""

    __tablename__ = "aggregates"
    __table_args__ = (UniqueConstraint("run_id", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    stderr: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_scored: Mapped[int] = mapped_column(Integer, default=0)
    n_total: Mapped[int] = mapped_column(Integer, default=0)
    higher_is_better: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunSummaryRow(Base):
    """A finished run's calls summarised once (hyouka.engine.accounting.RunSummary): what the leaderboard reads.

    Apart from the run's row because of its latencies (8 bytes a call), which only the leaderboard reads.
    """

    __tablename__ = "run_summaries"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # the run's, then
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latencies: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    answer_latencies: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


Index("ix_runs_model_task", RunRow.model, RunRow.task)
# side by side finds each run's sample of a document by its id (the views' paging, not the runner)
Index("ix_samples_run_doc", SampleRow.run_id, SampleRow.doc_id)
# NULLs never collide (SQLite and PostgreSQL alike): only open runs are held to one per configuration
Index("ux_runs_open_key", RunRow.open_key, unique=True)
