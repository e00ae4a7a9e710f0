"""Turn SIGTERM into an exception while a run executes, so the run records what it has and stops cleanly.

SIGINT already raises :class:`KeyboardInterrupt`; SIGTERM (``kill``, a scheduler stopping a job)
would end the process at once, with the last answers unwritten and the run left ``running``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by a signal; the exit status is ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Interrupted` in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
