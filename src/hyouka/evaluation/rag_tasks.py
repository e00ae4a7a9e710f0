"""``rag:<data file>`` tasks of ``hyouka.run`` (``hyouka run --tasks rag:qa.jsonl --index blog -k 4``).

Each is one :func:`hyouka.evaluate` run with ``index=``: the data file's questions are answered
from the index's chunks, scored by the named metrics (heuristic, judge and retrieval ones), and
reported as a :class:`~hyouka.engine.runner.RunResult` beside the benchmark tasks' runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hyouka.engine.runner import RunResult
from hyouka.errors import ArgumentError

__all__ = ["PREFIX", "run_rag_task", "split_rag_tasks"]

PREFIX = "rag:"


def split_rag_tasks(tasks: str | Sequence[str], index: Any) -> tuple[str | list[str], list[str]]:
    """``(other tasks, rag: tasks)``; a ``rag:`` task needs an index and an index needs a ``rag:`` task."""
    items = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else [t.strip() for t in tasks]
    rag = [t for t in items if t.startswith(PREFIX)]
    if rag and index is None:
        raise ArgumentError(f"task {rag[0]} answers from an index: give {{index}} (see `hyouka index list`)",
                            index="'<name>'")
    if index is not None and not rag:
        raise ArgumentError("an index is used by rag:<data file> tasks: give one in {tasks}",
                            tasks="'rag:qa.jsonl'")
    for task in rag:
        if not task[len(PREFIX):]:
            raise ArgumentError("a rag: task names its data file: {tasks}", tasks="'rag:qa.jsonl'")
    rest = [t for t in items if t and not t.startswith(PREFIX)]
    return (",".join(rest) if isinstance(tasks, str) else rest), rag


def run_rag_task(task: str, model: Any, *, index: Any, k: int | None, metrics: Any, judge: Any, **options: Any
                 ) -> RunResult:
    """Evaluate ``model`` on the ``rag:`` task's data with ``index`` (``options`` go to :func:`hyouka.evaluate`)."""
    from hyouka.evaluation.core import evaluate

    result = evaluate(model, task[len(PREFIX):], index=index, k=k, metrics=metrics, judge=judge, **options)
    calls = result.calls
    return RunResult(
        run_id=result.run_id, model=result.model, task=task, mode="rag", aggregates=result.aggregates,
        n_samples=len(result.table), status="completed", resumed=result.resumed,
        model_calls=sum(c.get("model_calls", 0) for c in calls.values()),
        cache_hits=sum(c.get("cache_hits", 0) for c in calls.values()),
        extra={"kind": "rag", "judge": result.judge, "calls": calls, "statuses": result.statuses},
    )
