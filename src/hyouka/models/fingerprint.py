"""The content fingerprint of a local checkpoint folder: part of its model identity (cache keys).

A retrained checkpoint often has the same file names and sizes as the old one, so the
fingerprint hashes the files' contents (SHA-256, every file below the folder, hidden ones such
as ``.git`` left out). Hashing gigabytes takes seconds, so each file's digest is remembered in a
small JSON file under ``HYOUKA_HOME`` by path, size and modification time: a re-run with
unchanged files reads no weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_CACHE_NAME = "fingerprints.json"


def _files(root: Path) -> list[Path]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(folder) / n for n in names if not n.startswith(".")]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FingerprintCache:
    """File digests keyed by resolved path, valid while size and mtime (ns) stay the same."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from hyouka.config import home_dir

            path = home_dir() / _CACHE_NAME
        self.path = path
        self._entries: dict[str, Any] = self._read()
        self._dirty = False

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or a torn file: start afresh
            return {}
        return data if isinstance(data, dict) else {}

    def digest(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        entry = self._entries.get(key)
        if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            return str(entry["sha256"])
        sha = file_sha256(path)
        self._entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
        self._dirty = True
        return sha

    def save(self) -> None:
        """Write the digests, merged with what another process wrote meanwhile (atomically: write, rename)."""
        if not self._dirty:
            return
        merged = {**self._read(), **self._entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fingerprints-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(merged, f)
        os.replace(tmp, self.path)
        self._dirty = False


def folder_fingerprint(root: str | Path, cache: FingerprintCache | None = None) -> str:
    """``sha256:<16 hex>`` over every file's relative path and content digest below ``root``."""
    root = Path(root)
    cache = cache if cache is not None else FingerprintCache()
    digest = hashlib.sha256()
    for f in _files(root):
        digest.update(f"{f.relative_to(root).as_posix()}\0{cache.digest(f)}\n".encode())
    with contextlib.suppress(OSError):  # a read-only home: the fingerprint is right, the next run hashes again
        cache.save()
    return "sha256:" + digest.hexdigest()[:16]
