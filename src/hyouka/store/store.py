"""The results store: SQLite by default, any SQLAlchemy database for teams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, create_engine, delete, event, insert, inspect, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hyouka import jsonio
from hyouka.store.errors import RunNotFoundError, run_lookup_error
from hyouka.store.reader import SQLiteReader
from hyouka.store.schema import AggregateRow, Base, RunRow, RunSummaryRow, SampleRow, utcnow

__all__ = ["FINISHED_STATUSES", "RunNotFoundError", "RunOwnershipError", "Store"]

FINISHED_STATUSES = ("ok", "format_error", "parse_error")


LOCK_TIMEOUT_S = 30.0  # how long SQLite waits for another process's lock (as the response cache does)


class RunOwnershipError(RuntimeError):
    """This process no longer owns the run it writes to (another process took it over)."""


def _as_dict(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


# built once: SQLAlchemy memoizes a statement's compiled form and cache key on the object
_INSERT_SAMPLES = insert(SampleRow.__table__)


def _column_default(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg  # callables (dict, list) take a context


# a record's columns: name, the default where a record leaves it out, and whether it holds JSON
_SAMPLE_FIELDS = tuple(
    (c.name, _column_default(c), isinstance(c.type, JSON))
    for c in SampleRow.__table__.columns
    if c.name not in ("id", "run_id")
)
_SAMPLE_COLUMNS = ("run_id", *(name for name, _, _ in _SAMPLE_FIELDS))
_SQLITE_INSERT_SAMPLES = (
    f"INSERT INTO samples ({', '.join(_SAMPLE_COLUMNS)}) VALUES ({', '.join('?' * len(_SAMPLE_COLUMNS))})"
)


def _sample_row(run_id: str, record: dict[str, Any]) -> tuple[Any, ...]:
    """A record as the driver's parameters: column defaults filled in, JSON encoded as SQLAlchemy's JSON type."""
    get, dumps = record.get, jsonio.dumps
    values = [dumps(get(name, default)) if is_json else get(name, default) for name, default, is_json in _SAMPLE_FIELDS]
    return (run_id, *values)


def _is_creation_race(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(
        word in text for word in ("already exists", "duplicate column", "database is locked")
    )


def stale_cutoff(seconds: float) -> datetime:
    """The moment before which a heartbeat is stale."""
    return utcnow() - timedelta(seconds=seconds)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # sample rows run to kilobytes (prompts, responses): 16 KiB pages hold several each, where the
    # default 4 KiB holds one and wastes the rest; it applies only when the database file is created
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: no corruption on a crash, one fsync per checkpoint
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Runs, samples and aggregates, behind a small query API."""

    def __init__(self, url: str | None = None) -> None:
        if url is None:
            from hyouka.config import store_url

            url = store_url()
        self.url = url
        sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(
            url,
            json_serializer=jsonio.dumps,
            json_deserializer=jsonio.loads,  # NaN becomes null, as PostgreSQL needs
            connect_args={"timeout": LOCK_TIMEOUT_S} if sqlite else {},
        )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.create_tables()  # and add the columns that a store written by an earlier version lacks
        # SQLite takes sample rows straight from the driver (see write_samples)
        self._driver_inserts = self.engine.dialect.name == "sqlite"
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite files are read through the standard library's driver (hyouka.store.reader)
        self._reader = SQLiteReader.for_url(url) if self.engine.dialect.name == "sqlite" else None
        if self._reader is not None:
            self._reader.path = self._reader.path.resolve()  # the file the engine just opened

    def create_tables(self, tables: Sequence[Any] | None = None, attempts: int = 10) -> None:
        """Create missing tables (``tables``, default all), safe while other processes do the same.

        Several processes may open a fresh store at once: each checks and creates, so one may
        find a table or column that another made meanwhile; it then looks again.
        """
        for attempt in range(attempts):
            try:
                Base.metadata.create_all(self.engine, tables=tables)
                if tables is None:
                    self._add_missing_columns()
                return
            except DBAPIError as exc:  # "table runs already exists", "duplicate column", a unique race
                if attempt == attempts - 1 or not _is_creation_race(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _add_missing_columns(self) -> None:
        inspector = inspect(self.engine)
        indexes = {i["name"] for i in inspector.get_indexes(SampleRow.__tablename__)}
        for index in SampleRow.__table__.indexes:  # indexes added since a store was written
            if index.name not in indexes:
                index.create(self.engine, checkfirst=True)
        existing = {c["name"] for c in inspector.get_columns(RunRow.__tablename__)}
        missing = [c for c in RunRow.__table__.columns if c.name not in existing]
        if not missing:
            return
        preparer = self.engine.dialect.identifier_preparer
        with self.engine.begin() as conn:
            for column in missing:  # added columns are all nullable, so old rows read as "nobody"
                kind = column.type.compile(dialect=self.engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {preparer.quote(column.name)} {kind}")
        for index in RunRow.__table__.indexes:
            index.create(self.engine, checkfirst=True)

    def session(self) -> Session:
        return self._session()

    # -- runs ---------------------------------------------------------------
    def create_run(self, **fields: Any) -> str:
        run_id = fields.pop("id", None) or uuid.uuid4().hex[:12]
        with self.session() as s, s.begin():
            s.add(RunRow(id=run_id, **fields))
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self.session() as s, s.begin():
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunNotFoundError(f"no run {run_id!r} in {self.url}")
            for key, value in fields.items():
                setattr(row, key, value)

    def finish_run(self, run_id: str, status: str = "completed", **fields: Any) -> None:
        self.update_run(run_id, status=status, finished_at=utcnow(), **fields)

    # -- owners -------------------------------------------------------------
    def claim_run(
        self, run_id: str, owner: str, *, seen_owner: str | None, stale_before: datetime | None = None,
        **fields: Any,
    ) -> bool:
        """Make ``owner`` the run's owner if it is still owned by ``seen_owner`` (one conditional update).

        ``stale_before`` also requires the heartbeat to be older than that (a takeover of an owner
        whose heartbeat stopped: it fails if the owner beat meanwhile). False when another process
        changed the owner first. ``fields`` (status, error…) are written in the same update.
        """
        query = update(RunRow).where(RunRow.id == run_id)
        query = query.where(RunRow.owner.is_(None) if seen_owner is None else RunRow.owner == seen_owner)
        if stale_before is not None:
            query = query.where(or_(RunRow.heartbeat_at.is_(None), RunRow.heartbeat_at < stale_before))
        with self.session() as s, s.begin():
            result = s.execute(query.values(owner=owner, heartbeat_at=utcnow(), **fields))
            return bool(result.rowcount)

    def beat(self, run_id: str, owner: str) -> bool:
        """Refresh the owner's heartbeat; False when ``owner`` no longer owns the run."""
        with self.session() as s, s.begin():
            return self._beat(s, run_id, owner)

    @staticmethod
    def _beat(s: Session, run_id: str, owner: str) -> bool:
        query = update(RunRow).where(RunRow.id == run_id, RunRow.owner == owner).values(heartbeat_at=utcnow())
        return bool(s.execute(query).rowcount)

    def release_run(self, run_id: str, owner: str, *, summary: dict[str, Any] | None = None, **fields: Any) -> bool:
        """Write ``fields`` (the final status…) and clear the owner, if ``owner`` still owns the run; with
        ``summary`` (:meth:`hyouka.engine.accounting.RunSummary.to_row`), its summary in the same transaction."""
        query = update(RunRow).where(RunRow.id == run_id, RunRow.owner == owner)
        with self.session() as s, s.begin():
            released = bool(s.execute(query.values(owner=None, heartbeat_at=None, **fields)).rowcount)
            if released and summary is not None:
                self._put_summary(s, run_id, fields.get("finished_at"), summary)
            return released

    # -- run summaries ------------------------------------------------------
    @staticmethod
    def _put_summary(s: Session, run_id: str, finished_at: datetime | None, summary: dict[str, Any]) -> None:
        s.execute(delete(RunSummaryRow).where(RunSummaryRow.run_id == run_id))
        s.add(RunSummaryRow(run_id=run_id, finished_at=finished_at, **summary))

    def set_summary(self, run_id: str, finished_at: datetime | None, summary: dict[str, Any]) -> bool:
        """Store a summary of the run as it was when it finished at ``finished_at``; nothing (False) when the run
        has finished again since, or is gone."""
        with self.session() as s, s.begin():
            if s.scalar(select(RunRow.finished_at).where(RunRow.id == run_id)) != finished_at:
                return False
            self._put_summary(s, run_id, finished_at, summary)
            return True

    def summaries(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored summaries of these runs, by run id (a run without one is left out)."""
        if self._reader is not None:
            return self._reader.summaries(run_ids)
        ids = list(run_ids)
        with self.session() as s:
            rows = s.scalars(select(RunSummaryRow).where(RunSummaryRow.run_id.in_(ids)))
            return {r.run_id: _as_dict(r) for r in rows}

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id or unique id prefix."""
        if self._reader is not None:
            return self._reader.get_run(run_id)
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                return _as_dict(row)
            rows = s.scalars(select(RunRow).where(RunRow.id.startswith(run_id))).all()
        if len(rows) == 1:
            return _as_dict(rows[0])
        raise run_lookup_error(run_id, len(rows), self.url)

    def find_run(self, config_hash: str, *, unfinished: bool) -> dict[str, Any] | None:
        """The latest run with this configuration, completed or not.

        ``unfinished``: the run with work left, i.e. the open one (see ``RunRow.open_key``), else one
        written by an earlier version that never completed.
        """
        with self.session() as s:
            if unfinished:
                row = s.scalars(select(RunRow).where(RunRow.open_key == config_hash)).first()
                if row is not None:
                    return _as_dict(row)
            query = select(RunRow).where(RunRow.config_hash == config_hash)
            query = query.where(RunRow.status != "completed") if unfinished else query.where(
                RunRow.status == "completed"
            )
            row = s.scalars(query.order_by(RunRow.created_at.desc())).first()
        return _as_dict(row) if row else None

    def list_runs(self, *, status: str | None = None, omit: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Runs oldest first (of ``status``), without the columns named in ``omit``."""
        if self._reader is not None:
            return self._reader.list_runs(status=status, omit=omit)
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.created_at)
            if status:
                query = query.where(RunRow.status == status)
            left_out = set(omit)
            return [{k: v for k, v in _as_dict(r).items() if k not in left_out} for r in s.scalars(query)]

    def delete_run(self, run_id: str) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(SampleRow).where(SampleRow.run_id == run_id))
            s.execute(delete(AggregateRow).where(AggregateRow.run_id == run_id))
            s.execute(delete(RunSummaryRow).where(RunSummaryRow.run_id == run_id))
            s.execute(delete(RunRow).where(RunRow.id == run_id))

    # -- samples ------------------------------------------------------------
    def write_samples(
        self, run_id: str, records: Sequence[dict[str, Any]], *, replace: bool = True, owner: str | None = None
    ) -> None:
        """Insert or replace sample records (keyed by ``sample_index``) in one transaction.

        ``replace=False`` is for a run known to hold none of these samples yet (a fresh run):
        it skips looking for rows to replace. With ``owner``, the same transaction refreshes the
        owner's heartbeat, and writes nothing (:class:`RunOwnershipError`) if another owns the run.
        """
        if not records and owner is None:
            return
        with self.session() as s, s.begin():
            if owner is not None and not self._beat(s, run_id, owner):
                raise RunOwnershipError(f"run {run_id} was taken over by another process; this one stops writing")
            if not records:
                return
            if replace:
                indices = [r["sample_index"] for r in records]
                s.execute(delete(SampleRow).where(SampleRow.run_id == run_id, SampleRow.sample_index.in_(indices)))
            if self._driver_inserts:
                # straight to the driver, JSON encoded here: SQLAlchemy's per-row parameter
                # processing would cost about as much as SQLite's own insert
                rows = [_sample_row(run_id, record) for record in records]
                s.connection().exec_driver_sql(_SQLITE_INSERT_SAMPLES, rows)
            else:  # Core insert on the table: the ORM's bulk path adds per-row bookkeeping
                s.execute(_INSERT_SAMPLES, [{"run_id": run_id, **record} for record in records])

    def finished_indices(self, run_id: str) -> set[int]:
        """Samples that need no more model calls (failed calls are retried on resume)."""
        with self.session() as s:
            rows = s.execute(
                select(SampleRow.sample_index).where(
                    SampleRow.run_id == run_id, SampleRow.status.in_(FINISHED_STATUSES)
                )
            )
            return {index for (index,) in rows}

    def samples(self, run_id: str, *, indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
        if self._reader is not None:
            return self._reader.samples(run_id, indices=indices)
        with self.session() as s:
            query = select(SampleRow).where(SampleRow.run_id == run_id).order_by(SampleRow.sample_index)
            if indices is not None:
                query = query.where(SampleRow.sample_index.in_(list(indices)))
            return [_as_dict(r) for r in s.scalars(query)]

    def call_samples(self, run_id: str) -> list[dict[str, Any]]:
        """A run's samples with only what accounting reads: ``sample_index``, ``status``, ``responses`` and
        ``details['answer']`` (a judge run's answer call): a fraction of each row, for views over large runs."""
        if self._reader is not None:
            return self._reader.call_samples(run_id)
        answer = SampleRow.details["answer"]
        query = (select(SampleRow.sample_index, SampleRow.status, SampleRow.responses, answer)
                 .where(SampleRow.run_id == run_id).order_by(SampleRow.sample_index))
        with self.session() as s:
            return [{"sample_index": index, "status": status, "responses": responses or [],
                     "details": {"answer": found} if found is not None else {}}
                    for index, status, responses, found in s.execute(query)]

    def update_sample_scores(self, run_id: str, updates: Sequence[dict[str, Any]]) -> None:
        """Rewrite scoring fields (prediction, metrics, status…) of existing samples."""
        with self.session() as s, s.begin():
            rows = {
                r.sample_index: r
                for r in s.scalars(select(SampleRow).where(SampleRow.run_id == run_id))
            }
            for update in updates:
                row = rows[update["sample_index"]]
                for key, value in update.items():
                    setattr(row, key, value)

    # -- aggregates ---------------------------------------------------------
    def set_aggregates(self, run_id: str, aggregates: Sequence[dict[str, Any]]) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(AggregateRow).where(AggregateRow.run_id == run_id))
            s.add_all(AggregateRow(run_id=run_id, **a) for a in aggregates)

    def aggregates(self, run_id: str) -> dict[str, dict[str, Any]]:
        if self._reader is not None:
            return self._reader.aggregates(run_id)
        with self.session() as s:
            rows = s.scalars(select(AggregateRow).where(AggregateRow.run_id == run_id))
            return {r.metric: _as_dict(r) for r in rows}

    def all_aggregates(self, run_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        if self._reader is not None:
            return self._reader.all_aggregates(run_ids)
        ids = list(run_ids)
        out: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in ids}
        with self.session() as s:
            for r in s.scalars(select(AggregateRow).where(AggregateRow.run_id.in_(ids))):
                out[r.run_id][r.metric] = _as_dict(r)
        return out

    def close(self) -> None:
        self.engine.dispose()
