"""A response cache on SQLite: one row per request key, the response as JSON.

Only successful responses are stored, so a failed call is retried on the next
run. Writes are buffered and committed in small groups: every :data:`_FLUSH_ROWS`
answers, and at most :data:`_FLUSH_SECONDS` after an answer arrives (a timer, so
answers do not wait in memory while the model works on its next batch); a kill
loses at most that much. The runner flushes the cache before it commits the
sample records that depend on it, so every recorded sample's answers are cached.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from hyouka import jsonio
from hyouka.models.base import Response

# WITHOUT ROWID: rows live in the key's own b-tree, so a lookup is one search, not two
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
) WITHOUT ROWID
"""

_CHUNK = 500  # SQLite limits the number of bound parameters per statement
_FLUSH_ROWS = 16  # a kill -9 pays again for fewer answers than this (plus those in flight)
_FLUSH_SECONDS = 0.5
_TIMED_FLUSH = True  # False: the time is checked only when an answer arrives (as before; benchmarks compare)


def decode_response(blob: str) -> Response:
    """A cached response from its stored JSON."""
    data = jsonio.loads(blob)
    try:
        return Response(**data)
    except TypeError:  # a field this version does not know (a newer writer): keep the known ones
        return Response.from_dict(data)


class ResponseCache:
    """Persistent map from request key to :class:`Response`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._create_or_upgrade()
        self._pending: list[tuple[str, str]] = []
        self._last_flush = time.monotonic()
        self._timer: threading.Timer | None = None

    def _create_or_upgrade(self) -> None:
        """Create the table; a cache written by an earlier version (a rowid table) is moved over once.

        The check and the move are one write transaction, so a second process opening the
        same file meanwhile waits and then finds the new table; a failed move changes nothing.
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='responses'").fetchone()
            if row is not None and "WITHOUT ROWID" not in row[0].upper():
                self._conn.execute(_SCHEMA.format(table="responses_upgraded"))
                self._conn.execute("INSERT INTO responses_upgraded SELECT key, response, created_at FROM responses")
                self._conn.execute("DROP TABLE responses")
                self._conn.execute("ALTER TABLE responses_upgraded RENAME TO responses")
            else:
                self._conn.execute(_SCHEMA.format(table="responses"))
            self._conn.commit()
        except BaseException:
            self._conn.rollback()
            raise

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        """The cached responses among ``keys``."""
        return {key: decode_response(blob) for key, blob in self.get_stored(keys).items()}

    def get_stored(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored JSON of the cached responses among ``keys`` (:func:`decode_response` reads one).

        For callers that decode each response when they need it, so that thousands of
        responses are not all alive at once.
        """
        unique = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
                ).fetchall()
                found.update(rows)
        return found

    def put(self, key: str, response: Response) -> None:
        """Store one successful response (failures are never cached)."""
        if not response.ok:
            return
        # only the fields that are set: smaller rows, and quicker to read back
        data = response.to_dict(compact=True)
        data.pop("cached", None)
        with self._lock:
            self._pending.append((key, jsonio.dumps(data)))
            due = time.monotonic() - self._last_flush > _FLUSH_SECONDS
            if len(self._pending) >= _FLUSH_ROWS or due:
                self._flush_locked()
            elif _TIMED_FLUSH and self._timer is None:
                self._timer = threading.Timer(_FLUSH_SECONDS, self._flush_on_timer)
                self._timer.daemon = True
                self._timer.start()

    def _flush_on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._conn is not None:
                try:
                    self._flush_locked()
                except sqlite3.Error:  # locked for longer than the timeout: the next put or flush retries
                    self._conn.rollback()

    def flush(self) -> None:
        """Commit buffered writes."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self._conn.executemany(
                "INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)", self._pending
            )
            self._conn.commit()
            self._pending.clear()
        self._last_flush = time.monotonic()

    def __len__(self) -> int:
        with self._lock:
            self._flush_locked()
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            self._flush_locked()
            self._conn.close()
            self._conn = None  # type: ignore[assignment]
