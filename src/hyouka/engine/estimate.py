"""Dry runs: the calls, tokens and cost a run would take, computed before any call.

The plan is the runner's own: the same documents, mode, requests and cache keys. Samples
already finished in an unfinished run with the same configuration, duplicate requests and
requests answered by the response cache cost nothing and are counted apart. Completion
tokens are counted at each request's ``max_tokens``, so the cost is an upper estimate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hyouka.engine.accounting import TokenCounter, token_counter
from hyouka.engine.budget import estimated_cost, estimated_tokens
from hyouka.engine.executor import Executor
from hyouka.engine.records import config_hash
from hyouka.engine.runner import _hashed_part, adapt_request, check_limit, choose_mode, run_config
from hyouka.models.base import Model, Request
from hyouka.pricing.table import PriceMatch
from hyouka.store.store import Store
from hyouka.tasks.task import Task


@dataclass
class TaskEstimate:
    """What one task would cost."""

    task: str
    mode: str
    n_docs: int
    n_done: int  # samples already stored by an unfinished run of the same configuration
    n_requests: int
    n_duplicates: int
    n_cached: int
    n_calls: int  # requests that would reach the model
    prompt_tokens: int
    max_completion_tokens: int
    cost_usd: float | None
    note: str | None = None  # what the estimate rests on, where it is not the runner's exact plan (rag: tasks)


@dataclass
class RunEstimate:
    """What a whole ``hyouka run`` would cost, task by task."""

    model: str
    price: dict[str, Any] | None
    tasks: list[TaskEstimate] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def n_calls(self) -> int:
        return sum(t.n_calls for t in self.tasks)

    @property
    def prompt_tokens(self) -> int:
        return sum(t.prompt_tokens for t in self.tasks)

    @property
    def max_completion_tokens(self) -> int:
        return sum(t.max_completion_tokens for t in self.tasks)

    @property
    def cost_usd(self) -> float | None:
        """Upper estimate in USD; ``None`` if any task's cost is unknown (no price, or priced by time)."""
        costs = [t.cost_usd for t in self.tasks]
        return None if any(c is None for c in costs) else math.fsum(costs)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "price": self.price,
            "n_calls": self.n_calls,
            "prompt_tokens": self.prompt_tokens,
            "max_completion_tokens": self.max_completion_tokens,
            "cost_usd": self.cost_usd,
            "tasks": [asdict(t) for t in self.tasks],
            "skipped": self.skipped,
        }


def estimate_task(
    model: Model,
    model_spec: str,
    task: Task,
    *,
    store: Store,
    executor: Executor,
    price: PriceMatch | None,
    mode: str = "auto",
    limit: int | None = None,
    max_tokens: int | None = None,
    use_chat: bool = False,
    model_options: dict[str, Any] | None = None,
    counter: TokenCounter | None = None,
) -> TaskEstimate:
    """Plan ``task`` exactly as :func:`~hyouka.engine.runner.evaluate_task` would, and price the calls."""
    count = counter or token_counter(model)
    check_limit(limit)
    chosen = choose_mode(task, model, mode)
    docs = task.docs()[:limit] if limit is not None else task.docs()
    config = run_config(
        model_spec, model, task, chosen, limit=limit, max_tokens=max_tokens, use_chat=use_chat,
        data_dir=task._data_dir, data_file=task._data_file, model_options=model_options or {},
    )
    unfinished = store.find_run(config_hash(_hashed_part(config)), unfinished=True)
    done = store.finished_indices(unfinished["id"]) if unfinished else set()
    params = task.generation_params(max_tokens, seed=task.seed)

    unique: dict[str, Request] = {}
    n_requests = 0
    for index in range(len(docs)):
        if index in done:
            continue
        prompt = task.prompt(docs[index])
        for request in task.requests(docs[index], chosen, params, prompt=prompt):
            n_requests += 1
            adapted = adapt_request(request, model, use_chat)
            unique.setdefault(executor.key(adapted), adapted)
    cached = executor.cache.get_stored(unique) if executor.cache is not None else {}  # membership only: no decoding
    to_call = [r for k, r in unique.items() if k not in cached]

    prompt_tokens = completion_tokens = 0
    cost: float | None = 0.0
    for request in to_call:
        p, c = estimated_tokens(request, count)
        prompt_tokens += p
        completion_tokens += c
        one = estimated_cost(price.price if price else None, request, count)
        cost = None if cost is None or one is None else cost + one
    return TaskEstimate(
        task=task.name,
        mode=chosen,
        n_docs=len(docs),
        n_done=len(done),
        n_requests=n_requests,
        n_duplicates=n_requests - len(unique),
        n_cached=len(unique) - len(to_call),
        n_calls=len(to_call),
        prompt_tokens=prompt_tokens,
        max_completion_tokens=completion_tokens,
        cost_usd=cost if to_call else 0.0,
    )


def estimate_tasks(
    model: Model,
    model_spec: str,
    tasks: list[Task],
    *,
    store: Store,
    executor: Executor,
    price: PriceMatch | None,
    **options: Any,
) -> RunEstimate:
    """:func:`estimate_task` for each task (``options``: mode, limit, max_tokens, use_chat, model_options)."""
    count = token_counter(model)
    out = RunEstimate(model=model_spec, price=price.to_dict() if price else None)
    for task in tasks:
        out.tasks.append(
            estimate_task(model, model_spec, task, store=store, executor=executor, price=price, counter=count,
                          **options)
        )
    return out


def check_ceiling(estimate: RunEstimate, ceiling: float) -> None:
    """Refuse to start a run above ``ceiling`` (USD), or one whose spending cannot be priced at all.

    A model priced per GPU-hour has no estimate before it has run; the ceiling then holds live only.
    """
    from hyouka.engine.budget import BudgetExceededError

    if estimate.price is None:
        raise BudgetExceededError(
            0.0, ceiling, f"cannot hold {estimate.model} to --max-cost ${ceiling:.4f}: the price table has no "
            "entry for it; give one in a --prices file"
        )
    cost = estimate.cost_usd
    if cost is not None and cost > ceiling:
        raise BudgetExceededError(
            0.0, ceiling, f"estimated cost ${cost:.4f} ({estimate.n_calls} calls) is above --max-cost ${ceiling:.4f}; "
            "nothing was run (`hyouka run --dry-run` shows the estimate per task)"
        )
