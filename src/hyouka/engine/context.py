"""What the code that starts a run tells every run it makes: the job it belongs to, and when to stop.

An agent (:mod:`hyouka.jobs.agent`) runs a job through the ordinary Python API inside
:func:`run_context`; each :class:`~hyouka.engine.recorder.RunRecorder` made meanwhile (benchmark,
judge, pairwise…) writes the job id on its run and stops at the next finished sample once ``stop`` is
set, as it does on SIGTERM: the run is recorded ``interrupted`` and resumes without paying again. The
context is per thread (a :class:`~contextvars.ContextVar`), so concurrent jobs keep theirs apart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    """The job a run belongs to (``None``: none) and the event that asks its runs to stop."""

    job_id: str | None = None
    stop: threading.Event | None = None

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()


_NONE = RunContext()
_CURRENT: ContextVar[RunContext | None] = ContextVar("hyouka_run_context", default=None)


def current_context() -> RunContext:
    """The context the runs started now belong to."""
    return _CURRENT.get() or _NONE


@contextmanager
def run_context(job_id: str | None = None, stop: threading.Event | None = None) -> Iterator[RunContext]:
    """Runs made inside carry ``job_id`` and stop when ``stop`` is set."""
    context = RunContext(job_id, stop)
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)
