"""The results store: SQLite by default, any SQLAlchemy database for teams."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, create_engine, delete, event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from hyouka import jsonio
from hyouka.store.errors import RunNotFoundError, run_lookup_error
from hyouka.store.reader import SQLiteReader
from hyouka.store.schema import AggregateRow, Base, RunRow, SampleRow, utcnow

__all__ = ["FINISHED_STATUSES", "RunNotFoundError", "Store"]

FINISHED_STATUSES = ("ok", "format_error", "parse_error")


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
        self.engine: Engine = create_engine(
            url, json_serializer=jsonio.dumps, json_deserializer=jsonio.loads  # NaN becomes null, as PostgreSQL needs
        )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        # SQLite takes sample rows straight from the driver (see write_samples)
        self._driver_inserts = self.engine.dialect.name == "sqlite"
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite files are read through the standard library's driver (hyouka.store.reader)
        self._reader = SQLiteReader.for_url(url) if self.engine.dialect.name == "sqlite" else None
        if self._reader is not None:
            self._reader.path = self._reader.path.resolve()  # the file the engine just opened

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
        """The latest run with this configuration, completed or not."""
        with self.session() as s:
            query = select(RunRow).where(RunRow.config_hash == config_hash)
            query = query.where(RunRow.status != "completed") if unfinished else query.where(
                RunRow.status == "completed"
            )
            row = s.scalars(query.order_by(RunRow.created_at.desc())).first()
        return _as_dict(row) if row else None

    def list_runs(self, *, status: str | None = None) -> list[dict[str, Any]]:
        if self._reader is not None:
            return self._reader.list_runs(status=status)
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.created_at)
            if status:
                query = query.where(RunRow.status == status)
            return [_as_dict(r) for r in s.scalars(query)]

    def delete_run(self, run_id: str) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(SampleRow).where(SampleRow.run_id == run_id))
            s.execute(delete(AggregateRow).where(AggregateRow.run_id == run_id))
            s.execute(delete(RunRow).where(RunRow.id == run_id))

    # -- samples ------------------------------------------------------------
    def write_samples(self, run_id: str, records: Sequence[dict[str, Any]], *, replace: bool = True) -> None:
        """Insert or replace sample records (keyed by ``sample_index``) in one transaction.

        ``replace=False`` is for a run known to hold none of these samples yet (a fresh run):
        it skips looking for rows to replace.
        """
        if not records:
            return
        with self.session() as s, s.begin():
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
