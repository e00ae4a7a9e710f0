"""Reading a SQLite results store through the standard library's driver, without SQLAlchemy.

The read-only commands (``hyouka runs``, ``show``, ``leaderboard``) spend most of their time
importing SQLAlchemy (a quarter of a second) when all they need is a few ``SELECT``s. A
:class:`SQLiteReader` answers the store's read queries on a SQLite file with :mod:`sqlite3` and
returns the same dicts as :class:`hyouka.store.store.Store` (JSON decoded, datetimes parsed,
booleans as bool); the store uses it for its own reads of SQLite files, so there is one read
path per kind of database. :func:`open_store` gives the read-only commands a reader when the
store is a SQLite file that already exists, else a full :class:`~hyouka.store.store.Store`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyouka import jsonio
from hyouka.store.columns import TABLES
from hyouka.store.errors import run_lookup_error

if TYPE_CHECKING:
    from hyouka.store.store import Store

_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")
_LOCK_TIMEOUT_S = 30.0
_CHUNK = 500  # ids bound per query: far below SQLite's limit (999 before 3.32)


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///path`` URL; None for other databases, memory or URL options."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            path = url[len(prefix):]
            if not path or path == ":memory:" or "?" in path or path.startswith("file:"):
                return None
            return Path(path)
    return None


def _json(value: Any) -> Any:
    return jsonio.loads(value) if isinstance(value, (str, bytes)) else value


def _datetime(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# how a column of each kind but "plain" (as the driver gives it) is read; None stays None
_DECODERS: dict[str, Callable[[Any], Any]] = {"json": _json, "datetime": _datetime, "bool": bool}


class SQLiteReader:
    """The store's read queries on one SQLite file."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        self._present: dict[str, set[str]] = {}

    @classmethod
    def for_url(cls, url: str) -> SQLiteReader | None:
        """A reader for ``url`` when it names an existing SQLite file, else None."""
        path = sqlite_file(url)
        return cls(path, url) if path is not None and path.is_file() else None

    def _connect(self) -> sqlite3.Connection:
        # one connection per query: cheap for SQLite, and safe from any thread
        return sqlite3.connect(self.path, timeout=_LOCK_TIMEOUT_S)

    def _columns(self, db: sqlite3.Connection, table: str) -> set[str]:
        if table not in self._present:
            self._present[table] = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        return self._present[table]

    def _select(self, table: str, where: str = "", params: Iterable[Any] = (), order: str = "",
                omit: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Rows of ``table`` as dicts of every known column but those in ``omit``; a column an older
        store lacks reads as None."""
        left_out = set(omit)
        kinds = {name: kind for name, kind in TABLES[table].items() if name not in left_out} if left_out \
            else TABLES[table]
        db = self._connect()
        try:
            present = self._columns(db, table)
            if not present:  # a file that no store has written to yet
                return []
            names = [name for name in kinds if name in present]
            sql = f"SELECT {', '.join(names)} FROM {table}"
            sql += f" WHERE {where}" if where else ""
            sql += f" ORDER BY {order}" if order else ""
            rows = db.execute(sql, tuple(params)).fetchall()
        finally:
            db.close()
        missing = [name for name in kinds if name not in present]
        decoded = [(i, name, _DECODERS[kinds[name]]) for i, name in enumerate(names) if kinds[name] != "plain"]
        out = []
        for row in rows:
            record = dict(zip(names, row, strict=True))
            for i, name, decode in decoded:
                if row[i] is not None:
                    record[name] = decode(row[i])
            out.append({name: record.get(name) for name in kinds} if missing else record)
        return out

    # -- the store's read API ------------------------------------------------------
    def list_runs(self, *, status: str | None = None, omit: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Runs oldest first, without the columns in ``omit`` (a listing need not decode every run's JSON)."""
        if status:
            return self._select("runs", "status = ?", (status,), order="created_at", omit=omit)
        return self._select("runs", order="created_at", omit=omit)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id or unique id prefix."""
        exact = self._select("runs", "id = ?", (run_id,))
        if exact:
            return exact[0]
        rows = self._select("runs", "substr(id, 1, ?) = ?", (len(run_id), run_id))
        if len(rows) == 1:
            return rows[0]
        raise run_lookup_error(run_id, len(rows), self.url)

    def samples(self, run_id: str, *, indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
        if indices is None:
            return self._select("samples", "run_id = ?", (run_id,), order="sample_index")
        wanted = sorted(set(indices))
        out: list[dict[str, Any]] = []
        for start in range(0, len(wanted), _CHUNK):  # SQLite's limit on bound parameters
            chunk = wanted[start:start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            out += self._select("samples", f"run_id = ? AND sample_index IN ({marks})", (run_id, *chunk),
                                order="sample_index")
        return out

    def call_samples(self, run_id: str) -> list[dict[str, Any]]:
        """:meth:`hyouka.store.store.Store.call_samples` on this file."""
        db = self._connect()
        try:
            rows = db.execute("SELECT sample_index, status, responses, json_extract(details, '$.answer') FROM samples "
                              "WHERE run_id = ? ORDER BY sample_index", (run_id,)).fetchall()
        finally:
            db.close()
        loads = jsonio.loads
        return [{"sample_index": index, "status": status, "responses": loads(responses) if responses else [],
                 "details": {"answer": loads(answer)} if answer else {}}
                for index, status, responses, answer in rows]

    def aggregates(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {r["metric"]: r for r in self._select("aggregates", "run_id = ?", (run_id,), order="id")}

    def all_aggregates(self, run_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        ids = list(run_ids)
        out: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in ids}
        for start in range(0, len(ids), _CHUNK):  # SQLite's limit on bound parameters
            chunk = ids[start:start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for r in self._select("aggregates", f"run_id IN ({marks})", chunk, order="id"):
                out[r["run_id"]][r["metric"]] = r
        return out

    def summaries(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """:meth:`hyouka.store.store.Store.summaries` on this file."""
        ids = list(run_ids)
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            out.update((r["run_id"], r) for r in self._select("run_summaries", f"run_id IN ({marks})", chunk))
        return out

    def close(self) -> None:
        """Nothing to release: each query opens and closes its own connection."""


def open_store(url: str | None = None) -> SQLiteReader | Store:
    """What the read-only commands read from: a :class:`SQLiteReader` for an existing SQLite file
    (no SQLAlchemy import), else a full :class:`~hyouka.store.store.Store` (which creates a new store)."""
    if url is None:
        from hyouka.config import store_url

        url = store_url()
    reader = SQLiteReader.for_url(url)
    if reader is not None:
        return reader
    from hyouka.store.store import Store

    return Store(url)
