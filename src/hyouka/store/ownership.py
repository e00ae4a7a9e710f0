"""Who executes a run: owner ids, heartbeats, and telling a live owner from a gone one.

A process that executes a run writes its owner id and a heartbeat into the run's row
(:meth:`hyouka.store.store.Store.claim_run`) and refreshes the heartbeat while it works. Another
process may take the run over only when its owner is gone: the heartbeat is older than
:data:`STALE_AFTER_S`, or the owner ran on this host and its process no longer exists.
Everything here is plain Python, cheap enough for ``hyouka runs``.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timezone

STALE_AFTER_S = float(os.environ.get("HYOUKA_STALE_AFTER_S", 60.0))  # no heartbeat for this long: owner gone
BEAT_EVERY_S = min(10.0, STALE_AFTER_S / 4)  # how often a working owner refreshes its heartbeat


def new_owner_id() -> str:
    """``host:pid:nonce``, unique per claim (a process that claims twice gets two ids)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def heartbeat_age_s(heartbeat_at: datetime | None, now: datetime | None = None) -> float | None:
    """Seconds since the heartbeat, ``None`` without one."""
    if heartbeat_at is None:
        return None
    now = now or datetime.now(timezone.utc)
    return (now - _as_utc(heartbeat_at)).total_seconds()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def owner_process_gone(owner: str) -> bool:
    """True when ``owner`` ran on this host and its process has exited (a dead owner beats no more)."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not _process_exists(int(pid))


def owner_gone(owner: str | None, heartbeat_at: datetime | None, *, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether nobody executes a run with this owner and heartbeat any more (no owner: nobody did)."""
    if owner is None:
        return True
    age = heartbeat_age_s(heartbeat_at)
    return age is None or age > stale_after_s or owner_process_gone(owner)


def describe_owner(owner: str, heartbeat_at: datetime | None) -> str:
    """``pid 123 on host h, last heartbeat 4 s ago`` for messages."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    age = heartbeat_age_s(heartbeat_at)
    beat = "no heartbeat yet" if age is None else f"last heartbeat {age:.0f} s ago"
    return f"pid {pid} on host {host}, {beat}"


def display_status(run: dict) -> str:
    """A run's status for listings: ``running`` becomes ``running (owner gone)`` when nobody executes it."""
    status = str(run.get("status"))
    if status == "running" and owner_gone(run.get("owner"), run.get("heartbeat_at")):
        return "running (owner gone)"
    return status
