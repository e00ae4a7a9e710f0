"""Run one task against one model: plan, execute through the cache, record, aggregate.

Records are written as samples complete. A run that is killed or fails keeps
its finished samples; running the same configuration again (or ``--resume``)
continues it without calling the model for them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyouka.engine.accounting import run_accounting, sample_cost
from hyouka.engine.executor import Executor
from hyouka.engine.recorder import RunRecorder
from hyouka.engine.records import compute_aggregates, sample_record
from hyouka.models.base import ChatRequest, GenerateRequest, Message, Model, Request, Response
from hyouka.pricing.table import Price, PriceTable, default_prices
from hyouka.store.store import Store
from hyouka.tasks.spec import Mode
from hyouka.tasks.task import Task

ProgressCallback = Callable[[int, int], None]
_KEPT_FOR_SUMMARY = ("sample_index", "status", "prediction", "reference", "responses")


class ModeError(ValueError):
    """The requested scoring mode does not fit the task or the model."""


MODES = ("auto", "loglikelihood", "generate")


def check_mode(requested: str) -> None:
    """Refuse a mode that is not one of :data:`MODES` (a typo must not fall back to the default)."""
    if requested not in MODES:
        raise ModeError(f"unknown mode {requested!r}; use {', '.join(MODES)}")


def check_limit(limit: int | None) -> None:
    """Refuse a document limit below 1 (slicing would run the whole split, or all but the last few)."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (--limit N evaluates the first N documents), got {limit}")


@dataclass
class RunResult:
    """What one task run produced."""

    run_id: str
    model: str
    task: str
    mode: str
    aggregates: dict[str, dict[str, Any]]
    n_samples: int
    status: str
    resumed: bool = False
    model_calls: int = 0
    cache_hits: int = 0
    suite: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        agg = self.aggregates.get(name)
        return None if agg is None else agg["value"]


def choose_mode(task: Task, model: Model, requested: str) -> Mode:
    """The scoring mode for a task: the requested one when the task supports it, else its default."""
    check_mode(requested)
    modes = task.spec.modes
    if requested in modes:
        mode: Mode = requested  # type: ignore[assignment]
    elif requested == "auto":
        mode = modes[0]
        if mode == "loglikelihood" and not model.capabilities.loglikelihood and "generate" in modes:
            mode = "generate"
    else:
        mode = modes[0]  # e.g. generation-only tasks in a log-likelihood run
    if mode == "loglikelihood" and not model.capabilities.loglikelihood:
        raise ModeError(
            f"model {model.name!r} cannot score log-likelihoods; run task {task.name!r} with --mode generate"
        )
    if mode == "generate" and not (model.capabilities.generate or model.capabilities.chat):
        raise ModeError(f"model {model.name!r} can neither generate nor chat")
    return mode


def require_task_run(run: dict[str, Any], action: str) -> None:
    """Refuse a stored run that :func:`evaluate_task` did not make (``hyouka eval``, judge, pairwise runs)."""
    if run.get("kind", "benchmark") == "benchmark" and "prompt_family" in (run.get("config") or {}):
        return
    raise ValueError(
        f"run {run['id']} ({run['task']}, a {run.get('kind')} run) was not made from a benchmark task "
        f"(e.g. by `hyouka eval`, a judge or pairwise comparison); only benchmark task runs can be {action}"
    )


def adapt_request(request: Request, model: Model, use_chat: bool) -> Request:
    """Send a text prompt as a single chat message to chat-only models (or when asked)."""
    if isinstance(request, GenerateRequest) and (use_chat or not model.capabilities.generate):
        return ChatRequest((Message("user", request.prompt),), request.params, repeat=request.repeat)
    return request


def run_config(
    model_spec: str,
    model: Model,
    task: Task,
    mode: Mode,
    *,
    limit: int | None,
    max_tokens: int | None,
    use_chat: bool,
    data_dir: Path | None,
    data_file: Path | None,
    model_options: dict[str, Any],
) -> dict[str, Any]:
    """The full description of a run: enough to rebuild it for ``--resume``."""
    return {
        "model": model_spec,
        "model_options": model_options,
        "model_identity": model.identity(),
        "task": task.name,
        "task_source": task.source,
        "task_version": task.spec.version,
        "task_hash": task.spec.content_hash(),
        "mode": mode,
        "prompt_family": task.family_choice,
        "num_fewshot": task.num_fewshot,
        "seed": task.seed,
        "limit": limit,
        "max_tokens": max_tokens,
        "chat": use_chat,
        "data_dir": str(data_dir) if data_dir else None,
        "data_file": str(data_file) if data_file else None,
    }


def _hashed_part(config: dict[str, Any]) -> dict[str, Any]:
    # Throughput settings change no answer, so they do not split runs; nor does where the task file lies.
    options = {k: v for k, v in config["model_options"].items() if k not in ("batch_size", "concurrency")}
    hashed = {k: v for k, v in config.items() if k != "task_source"}
    return {**hashed, "model_options": options}


def evaluate_task(
    model: Model,
    model_spec: str,
    task: Task,
    *,
    store: Store,
    executor: Executor,
    mode: str = "auto",
    limit: int | None = None,
    max_tokens: int | None = None,
    use_chat: bool = False,
    model_options: dict[str, Any] | None = None,
    resume: str | None = None,
    suite: str | None = None,
    progress: ProgressCallback | None = None,
    prices: PriceTable | None = None,
    reuse_completed: bool = False,
) -> RunResult:
    """Evaluate ``model`` on ``task`` and store every sample and aggregate.

    The run is owned while it executes (see :class:`hyouka.engine.recorder.RunRecorder`): the same
    configuration in another live process raises :class:`~hyouka.engine.recorder.RunBusyError`, and an
    explicit ``resume`` with settings other than the run's raises
    :class:`~hyouka.engine.recorder.ResumeMismatchError` naming them. ``reuse_completed`` takes up the
    completed run of this configuration, if there is one, instead of making a new one.
    """
    check_limit(limit)
    chosen = choose_mode(task, model, mode)
    docs = task.docs()[:limit] if limit is not None else task.docs()
    config = run_config(
        model_spec,
        model,
        task,
        chosen,
        limit=limit,
        max_tokens=max_tokens,
        use_chat=use_chat,
        data_dir=task._data_dir,
        data_file=task._data_file,
        model_options=model_options or {},
    )
    recorder = RunRecorder(
        store, kind="benchmark", model=model_spec, task=task.name, mode=chosen, config=config, n_samples=len(docs),
        executors=[executor], resume=resume, task_version=task.spec.version, task_hash=task.spec.content_hash(),
        model_identity=config["model_identity"], prices=prices if prices is not None else default_prices(),
        suite=suite, hashed_of=_hashed_part, reuse_completed=reuse_completed,
    )
    price = recorder.price  # accounting: each sample's cost at the price table's rates (hyouka.engine.accounting)
    with recorder:
        samples, statuses = _execute(task, model, docs, chosen, recorder, executor, max_tokens, use_chat,
                                     price.price if price else None, progress)
        aggregates = compute_aggregates(task, chosen, samples, n_total=len(docs), seed=task.seed)
        accounting = run_accounting(samples, price, duration_s=recorder.duration_s)
        stats = {"statuses": statuses, "model_calls": executor.stats.model_calls, "accounting": accounting}
        recorder.finish(aggregates, stats, samples)
    run_id = recorder.run_id
    return RunResult(
        run_id=run_id,
        model=model_spec,
        task=task.name,
        mode=chosen,
        aggregates={a["metric"]: a for a in aggregates},
        n_samples=len(docs),
        status="completed",
        resumed=recorder.resumed,
        model_calls=executor.stats.model_calls,
        cache_hits=executor.stats.cache_hits,
        suite=suite,
        extra={"statuses": statuses, "accounting": accounting, "reused": recorder.reused},
    )


def _execute(
    task: Task,
    model: Model,
    docs: list[dict[str, Any]],
    mode: Mode,
    recorder: RunRecorder,
    executor: Executor,
    max_tokens: int | None,
    use_chat: bool,
    price: Price | None,
    progress: ProgressCallback | None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Build the requests of the samples not yet finished, execute them, record each sample as it completes.

    Returns what aggregates and accounting read of every sample of the run, and the count of each status.
    """
    done = recorder.done
    todo = [i for i in range(len(docs)) if i not in done]
    params = task.generation_params(max_tokens, seed=task.seed)

    plan: list[tuple[int, int]] = []  # flat request position -> (sample, slot)
    requests: list[Request] = []
    per_sample: dict[int, list[Request]] = {}
    prompts: dict[int, str] = {}
    for index in todo:
        doc = docs[index]
        prompts[index] = task.prompt(doc)
        built = task.requests(doc, mode, params, prompt=prompts[index])
        per_sample[index] = sample_requests = [adapt_request(r, model, use_chat) for r in built]
        for slot, request in enumerate(sample_requests):
            plan.append((index, slot))
            requests.append(request)

    answers: dict[int, list[Response | None]] = {i: [None] * len(r) for i, r in per_sample.items()}
    pending = {i: len(r) for i, r in per_sample.items()}
    written: list[dict[str, Any]] = []
    completed = len(done)
    if progress:
        progress(completed, len(docs))
    # llmjp: metrics compare the output with the gold text, which the document gives
    kept = _KEPT_FOR_SUMMARY + (("output", "extracted", "doc") if task.scores_texts(mode) else ())
    # on an interruption the recorder closes the executor's stream: the calls in flight are cached
    for position, response in executor.execute(requests):
        index, slot = plan[position]
        answers[index][slot] = response
        pending[index] -= 1
        if pending[index]:
            continue
        responses = [r for r in answers.pop(index) if r is not None]
        scored = task.score(docs[index], mode, responses)
        record = sample_record(index, docs[index], prompts[index], per_sample[index], responses, scored)
        record["cost_usd"] = sample_cost(price, responses)
        recorder.add(record)
        # what aggregates and accounting read; the rest of the record is freed once written
        written.append({key: record[key] for key in kept})
        completed += 1
        if progress:
            progress(completed, len(docs))
    recorder.flush()
    # a fresh run scores what it just wrote; a resumed one reads back the earlier samples too
    samples = recorder.store.samples(recorder.run_id) if done else sorted(written, key=lambda r: r["sample_index"])
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
    return samples, statuses
