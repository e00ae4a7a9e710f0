"""``rag:<data file>`` tasks of ``hyouka.run`` (``hyouka run --tasks rag:qa.jsonl --index blog --top-k 4``).

Each is one :func:`hyouka.evaluate` run with ``index=``: the data file's questions are answered
from the index's chunks, scored by the named metrics (heuristic, judge and retrieval ones), and
reported as a :class:`~hyouka.engine.runner.RunResult` beside the benchmark tasks' runs. It is given
the run's own backends (the model loaded once, the judge), each a
:class:`~hyouka.engine.budget.MeteredModel` on the run's one budget, and the index's query embedder is
metered on it too: ``--max-cost`` holds every call of the run, and ``--dry-run`` prices rag tasks
with :func:`hyouka.evaluation.estimate.estimate_evaluate`, the function the ladder's dry run uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hyouka.engine.budget import MeteredModel
from hyouka.engine.estimate import TaskEstimate
from hyouka.engine.runner import RunResult
from hyouka.errors import ArgumentError
from hyouka.pricing.table import PriceTable

__all__ = ["PREFIX", "estimate_rag_task", "run_rag_task", "split_rag_tasks"]

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


@contextmanager
def metered_index(index: Any, model: Any, prices: PriceTable, cache: Any) -> Iterator[Any]:
    """``index`` (opened if a name) whose query embedder charges ``model``'s budget, when ``model`` is metered."""
    from hyouka.rag.index import Index

    the_index = index if isinstance(index, Index) else Index.open(index, cache=cache)
    if not (isinstance(model, MeteredModel) and the_index.embeds_queries):
        yield the_index
        return
    recorded = the_index.config["embedder"]
    price = prices.lookup(recorded["spec"], recorded.get("identity") or {})
    own = the_index.embedder
    the_index.use_embedder(MeteredModel(own, price.price if price else None, model.budget, spec=recorded["spec"]))
    try:
        yield the_index
    finally:
        the_index.use_embedder(own)


def run_rag_task(task: str, model: Any, *, index: Any, k: int | None, metrics: Any, judge: Any,
                 prices: PriceTable, num_fewshot: int | None = None, **options: Any) -> RunResult:
    """Evaluate ``model`` (a spec or the run's backend) on the ``rag:`` task's data with ``index``; ``options`` go
    to :func:`hyouka.evaluate`."""
    from hyouka.evaluation.core import evaluate

    with metered_index(index, model, prices, options.get("cache")) as the_index:
        result = evaluate(model, task[len(PREFIX):], index=the_index, k=k, metrics=metrics, judge=judge,
                          prices=prices, num_fewshot=num_fewshot or 0, **options)
    calls = result.calls
    return RunResult(
        run_id=result.run_id, model=result.model, task=task, mode="rag", aggregates=result.aggregates,
        n_samples=len(result.table), status="completed", resumed=result.resumed,
        model_calls=sum(c.get("model_calls", 0) for c in calls.values()),
        cache_hits=sum(c.get("cache_hits", 0) for c in calls.values()),
        extra={"kind": "rag", "judge": result.judge, "calls": calls, "statuses": result.statuses},
    )


def estimate_rag_task(task: str, model: Any, *, index: Any, k: int | None, metrics: Any, judge: Any,
                      prices: PriceTable, num_fewshot: int | None = None, **options: Any) -> list[TaskEstimate]:
    """A ``rag:`` task's dry run, as rows of a run's estimate: the model's calls, each judge's, the embeddings'."""
    from hyouka.evaluation.estimate import estimate_evaluate

    options = {key: v for key, v in options.items() if key not in ("store", "progress")}  # a dry run stores nothing
    data = estimate_evaluate(model, task[len(PREFIX):], index=index, k=k, metrics=metrics, judge=judge,
                             prices=prices, num_fewshot=num_fewshot or 0, **options)
    plan = data.retrieval
    rows = [_row(task, "rag", data.n_rows, data.model, plan.method if plan is not None else None)]
    rows += [_row(task, f"judge {j.model}", data.n_rows, j) for j in data.judges]
    if plan is not None and plan.embedder is not None:
        note = None if plan.embed_priced else f"no price for the embedder {plan.embedder}"
        rows.append(TaskEstimate(
            task=task, mode=f"embed {plan.embedder}", n_docs=data.n_rows, n_done=0, n_requests=plan.embed_requests,
            n_duplicates=0, n_cached=plan.embed_cached, n_calls=plan.embed_calls, prompt_tokens=plan.embed_tokens,
            max_completion_tokens=0, cost_usd=plan.embed_cost_usd if plan.embed_calls else 0.0, note=note))
    return rows


def _row(task: str, mode: str, n_rows: int, calls: Any, note: str | None = None) -> TaskEstimate:
    return TaskEstimate(task=task, mode=mode, n_docs=n_rows, n_done=0, n_requests=calls.n_requests, n_duplicates=0,
                        n_cached=calls.n_cached, n_calls=calls.n_calls, prompt_tokens=calls.prompt_tokens,
                        max_completion_tokens=calls.max_completion_tokens,
                        cost_usd=calls.cost_usd if calls.priced else None, note=note)

