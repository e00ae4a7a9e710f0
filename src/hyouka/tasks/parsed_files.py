"""Parsed data files, kept per process so that evaluating many models reads each file once.

An entry is keyed by the file's resolved path, size and modification time, so an edited
file is read again. The cache holds at most :data:`MAX_SOURCE_BYTES` of source files
(least recently used first out). Documents are shared between the tasks that load
them: hyouka never changes a loaded document, and callers should not either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

MAX_SOURCE_BYTES = 64 * 1024 * 1024  # parsed, documents take several times their file size

Docs = list[dict[str, Any]]
_entries: OrderedDict[tuple[Hashable, ...], tuple[int, Docs]] = OrderedDict()
_lock = threading.Lock()


def load_parsed(path: Path, parse: Callable[[Path], Docs], *options: Hashable) -> Docs:
    """``parse(path)``, or what it returned before for the unchanged file and the same ``options``.

    The list is a fresh copy each time; the documents in it are shared.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, *options)
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
            return list(entry[1])
    docs = parse(path)
    if stat.st_size <= MAX_SOURCE_BYTES:
        with _lock:
            _entries[key] = (stat.st_size, docs)
            while sum(size for size, _ in _entries.values()) > MAX_SOURCE_BYTES:
                _entries.popitem(last=False)
    return list(docs)


def clear() -> None:
    """Forget every parsed file."""
    with _lock:
        _entries.clear()
