"""Where hyouka keeps its files: the results store and the response cache.

Both default to ``~/.hyouka`` and follow ``HYOUKA_HOME``; the store can also be
any SQLAlchemy URL (``HYOUKA_STORE_URL``), e.g. PostgreSQL for a team.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """The folder holding the default store and cache (created on demand)."""
    home = Path(os.environ.get("HYOUKA_HOME", Path.home() / ".hyouka")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def store_url() -> str:
    """SQLAlchemy URL of the results store."""
    url = os.environ.get("HYOUKA_STORE_URL")
    return url or f"sqlite:///{home_dir() / 'results.sqlite'}"


def cache_path() -> Path:
    """SQLite file of the response cache."""
    return Path(os.environ.get("HYOUKA_CACHE", home_dir() / "cache.sqlite")).expanduser()


def jglue_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """JGLUE ``datasets/`` folder from an option or ``HYOUKA_JGLUE_DIR``."""
    value = explicit or os.environ.get("HYOUKA_JGLUE_DIR")
    return Path(value).expanduser() if value else None
