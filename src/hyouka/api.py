"""The Python API: ``hyouka.run`` evaluates a model on tasks and stores the results."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyouka.config import cache_path, jglue_dir
from hyouka.engine.budget import Budget, MeteredModel
from hyouka.engine.cache import ResponseCache
from hyouka.engine.estimate import RunEstimate, check_ceiling, estimate_tasks
from hyouka.engine.executor import Executor
from hyouka.engine.recorder import ResumeMismatchError
from hyouka.engine.runner import RunResult, check_limit, check_mode, evaluate_task, require_task_run
from hyouka.evaluation.rag_tasks import estimate_rag_task, run_rag_task, split_rag_tasks
from hyouka.judge.runs import JudgeRunResult
from hyouka.judge.tasks import (
    JUDGE_TASKS,
    JudgeTaskError,
    mt_bench_data_dir,
    resume_judge_run,
    run_judge_task,
    split_judge_tasks,
)
from hyouka.metrics.suite import SuiteTerm, suite_average
from hyouka.models.base import Model
from hyouka.models.registry import check_ready, load_model, parse_spec, recordable_options
from hyouka.pricing.table import PriceTable, load_prices
from hyouka.store.store import Store
from hyouka.tasks.loaders import DataError, DataPathError
from hyouka.tasks.prompts import get_family
from hyouka.tasks.registry import builtin_suites, builtin_task_names, expand, load_task, task_source
from hyouka.tasks.task import LabelError, Task, check_fewshot

ProgressFactory = Callable[[str], Callable[[int, int], None]]

# a run that called the model for at least this long ends with a full garbage collection
# (see _after_model_work); a shorter one would pay too large a share of its own time for it
COLLECT_AFTER_S = 2.0


@dataclass
class EvalResult:
    """The runs one call made, one per task, plus suite averages."""

    model: str
    runs: list[RunResult]
    skipped: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, task: str) -> RunResult:
        for run in self.runs:
            if run.task == task:
                return run
        raise KeyError(f"no run for task {task!r}; tasks run: {[r.task for r in self.runs]}")

    @property
    def suite_scores(self) -> dict[str, dict[str, Any]]:
        """Each suite's weighted average of its tasks' headline metrics (see :func:`hyouka.metrics.suite`).

        ``score`` is ``None`` unless every task of the suite has a value (``complete``); ``tasks``
        lists those that do and ``missing`` the others. Lower-is-better entries enter as ``1 - value``.
        """
        out: dict[str, dict[str, Any]] = {}
        for name in sorted({r.suite for r in self.runs if r.suite}):
            suite = builtin_suites()[name]
            terms = []
            for entry in suite.tasks:
                run = next((r for r in self.runs if r.task == entry.task), None)
                agg = (run.aggregates.get(entry.metric) if run else None) or {}
                terms.append(SuiteTerm(entry.task, agg.get("value"), entry.weight, entry.lower_is_better,
                                       agg.get("stderr")))
            avg = suite_average(terms)
            out[name] = {"score": avg.value, "ci_low": avg.ci_low, "ci_high": avg.ci_high, "tasks": list(avg.tasks),
                         "missing": list(avg.missing), "complete": avg.complete, "n_tasks": len(suite.tasks),
                         "note": avg.note}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "runs": [
                {
                    "run_id": r.run_id,
                    "task": r.task,
                    "mode": r.mode,
                    "n_samples": r.n_samples,
                    "aggregates": r.aggregates,
                    "resumed": r.resumed,
                    "model_calls": r.model_calls,
                    "cache_hits": r.cache_hits,
                }
                for r in self.runs
            ],
            "suites": self.suite_scores,
            "skipped": self.skipped,
        }


def _task_files(
    data_files: dict[str, str | Path] | None, planned: list[tuple[str, str | None]], extra: Sequence[str] = ()
) -> dict[str, Path]:
    """The data files of ``planned``'s tasks, keyed as ``planned`` names them.

    A task file's task may be keyed by its path (as given) or by the ``task:`` name inside it. A key
    naming no task at all (a typo, a task file's wrong name) is refused; one naming another built-in
    task is left unused, so one mapping can serve runs of different tasks.
    """
    files = {k: Path(v).expanduser() for k, v in (data_files or {}).items()}
    names = {name: load_task(name).task for name, _ in planned}
    known = {*names, *names.values(), *extra, *JUDGE_TASKS, *builtin_task_names()}
    unknown = [key for key in files if key not in known]
    if unknown:
        shown = [name if name == task else f"{name} (task {task})" for name, task in names.items()]
        tasks = ", ".join([*shown, *extra])
        raise DataError(f"--data-file {unknown[0]}=… names no task; this run's tasks: {tasks}")
    out: dict[str, Path] = {}
    for name, task in names.items():
        path = files.get(name, files.get(task))
        if path is not None:
            out[name] = path
    return out


def run(
    model: str | Model,
    tasks: str | list[str],
    *,
    mode: str = "auto",
    num_fewshot: int | None = None,
    prompt_family: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    data_files: dict[str, str | Path] | None = None,
    max_tokens: int | None = None,
    chat: bool = False,
    store: Store | str | None = None,
    cache: ResponseCache | str | Path | bool = True,
    resume: str | None = None,
    progress: ProgressFactory | None = None,
    max_cost: float | None = None,
    prices: str | Path | PriceTable | None = None,
    judge: str | Model | None = None,
    judge_options: dict[str, Any] | None = None,
    judge_max_tokens: int | None = None,
    reuse_completed: bool = False,
    index: Any = None,
    k: int | None = None,
    metrics: str | Sequence[Any] | None = None,
    backend: Model | None = None,
    **model_options: Any,
) -> EvalResult:
    """Evaluate a model on tasks or suites (``"jglue"``, ``"jcommonsenseqa,jnli"``).

    ``model`` is a spec such as ``"hf:rinna/japanese-gpt-neox-3.6b"`` or
    ``"openai:gpt-4o-mini"`` (``model_options`` go to the backend: ``base_url``,
    ``dtype``, ``device``, ``batch_size``…) or an already built backend.
    Tasks named explicitly must have their data; tasks that a suite brings in
    are skipped, with the reason, when theirs is missing.

    Costs come from the price table (``prices``: a YAML file consulted before the
    defaults). ``max_cost`` (USD) refuses to start when the estimate is above it and
    stops cleanly, resumable, before spending crosses it (``BudgetExceededError``).

    ``resume`` (a run id) continues that run: without ``model`` or ``tasks``, with the settings
    stored in it; with them and the other settings, only if they are the run's own (else
    :class:`~hyouka.engine.recorder.ResumeMismatchError` names what differs).

    Tasks graded by a judge (``ja_mt_bench``) need ``judge``: a spec such as
    ``"openai:gpt-4o"`` or ``"recorded:gpt-4_single.jsonl"`` (``judge_options`` go to its
    backend); the MT-Bench folder is ``data_files["ja_mt_bench"]``, ``data_dir`` or
    ``HYOUKA_MT_BENCH_DIR``. ``judge_max_tokens`` is each judgment's completion budget (default
    2048, FastChat's); a judge with a shorter context needs less (its refusal is reported with the
    prompt's length, the judge's context and this option).

    ``reuse_completed`` returns a benchmark task's completed run with the same configuration, if the
    store has one, instead of making a new one from the cache (the ladder's cells).

    ``rag:<data file>`` tasks answer the file's questions from ``index`` (an :class:`hyouka.rag.Index` or
    its name), ``k`` chunks each, scored by ``metrics`` (heuristic, judge and retrieval metrics; see
    :func:`hyouka.evaluate`, which runs each of them); ``num_fewshot`` puts that many other rows of the
    file, solved and without their chunks, before each question's RAG prompt. They run on this run's
    model, judge and budget: ``max_cost`` holds their model, judge and embedding calls too.

    ``backend`` serves the calls of the ``model`` spec instead of loading it here (e.g. replicas of it
    on Ray, :func:`hyouka.jobs.replicas.build_replicas`); the runs are recorded under the spec.
    """
    started = time.perf_counter()
    if resume and not (model and tasks):
        return resume_run(resume, store=store, cache=cache, progress=progress, max_cost=max_cost, prices=prices)
    check_mode(mode)  # before a model is loaded
    check_limit(limit)
    tasks, rag_tasks = split_rag_tasks(tasks, index)
    tasks, judge_tasks = split_judge_tasks(tasks)
    if judge_tasks and judge is None:
        raise JudgeTaskError(f"{', '.join(judge_tasks)} is graded by a judge: give one, e.g. {{judge}}",
                             judge="'openai:gpt-4o'")
    planned = expand(tasks)  # unknown names fail before a model is loaded
    if isinstance(model, str):
        parse_spec(model)  # and so does a misspelt backend, before any data is read
    check_fewshot(num_fewshot)
    files = _task_files(data_files, planned, judge_tasks)
    if prompt_family is not None:
        get_family(prompt_family)
    skipped: dict[str, str] = {}
    # data is read and its labels checked before a model is built: bad data fails fast, having loaded nothing
    built = _build_tasks(planned, jglue_dir(data_dir), files, prompt_family, num_fewshot, seed, skipped)
    the_store = store if isinstance(store, Store) else Store(store)
    the_cache = _open_cache(cache)
    if backend is None:
        backend = load_model(model, **model_options) if isinstance(model, str) else model
    check_ready(backend)
    spec_name = model if isinstance(model, str) else f"{type(model).__name__}:{backend.name}"

    result = EvalResult(model=spec_name, runs=[], skipped=skipped)
    table = load_prices(prices)
    budget = Budget(ceiling=max_cost)  # one budget for the model's and the judge's calls
    price = table.lookup(spec_name, backend.identity())
    metered = MeteredModel(backend, price.price if price else None, budget, spec=spec_name)
    if resume:  # this command's settings must be the run's own: evaluate_task names any that differ
        built = [_task_to_resume(the_store.get_run(resume), built, judge_tasks)]
        judge_tasks = []
    judged_by = _metered_judge(judge, judge_options, table, budget) if judge_tasks or rag_tasks else None
    rag_options = _rag_options(index, k, metrics, judged_by, judge_options, num_fewshot, the_store, the_cache,
                               limit, seed, table, max_tokens, judge_max_tokens, model_options)
    if max_cost is not None:
        planned_cost = estimate_tasks(backend, spec_name, [t for t, _ in built], store=the_store,
                                      executor=Executor(backend, the_cache), price=price, mode=mode, limit=limit,
                                      max_tokens=max_tokens, use_chat=chat, model_options=_recordable(model_options))
        for name in rag_tasks:  # priced as --dry-run prices them
            planned_cost.tasks += estimate_rag_task(name, metered, **rag_options)
        check_ceiling(planned_cost, max_cost)
    for name in judge_tasks:
        assert judged_by is not None and judged_by.spec is not None
        judged = run_judge_task(
            name, metered, spec_name, judged_by, judge_spec=judged_by.spec, store=the_store, cache=the_cache,
            data_dir=mt_bench_data_dir(data_dir, data_files), limit=limit, max_tokens=max_tokens,
            judge_options=judge_options, model_options=_recordable(model_options),
            progress=progress(name) if progress else None, prices=table, judge_max_tokens=judge_max_tokens,
        )
        result.runs.append(_judge_run_result(judged))
    for name in rag_tasks:  # hyouka.evaluate with the index, on this run's backends and budget
        result.runs.append(run_rag_task(name, metered, progress=progress(name) if progress else None,
                                        **rag_options))
    for task, suite in built:
        task_name = task.name
        result.runs.append(
            evaluate_task(
                metered,
                spec_name,
                task,
                store=the_store,
                executor=Executor(metered, the_cache),
                prices=table,
                mode=mode,
                limit=limit,
                max_tokens=max_tokens,
                use_chat=chat,
                model_options=_recordable(model_options),
                suite=suite,
                resume=resume,
                progress=progress(task_name) if progress else None,
                reuse_completed=reuse_completed,
            )
        )
    return _after_model_work(result, started)


def _metered_judge(judge: str | Model | None, options: dict[str, Any] | None, table: PriceTable,
                   budget: Budget, ready: bool = True) -> MeteredModel | None:
    """The run's judge, loaded once and charged to the run's budget (``None`` without one); ``ready``: checked
    able to call (a dry run needs no key)."""
    if judge is None:
        return None
    backend = load_model(judge, **(options or {})) if isinstance(judge, str) else judge
    if ready:
        check_ready(backend)
    spec = judge if isinstance(judge, str) else f"{type(judge).__name__}:{judge.name}"
    price = table.lookup(spec, backend.identity())
    return MeteredModel(backend, price.price if price else None, budget, spec=spec)


def _rag_options(index: Any, k: int | None, metrics: Any, judge: MeteredModel | None, judge_options: Any,
                 num_fewshot: int | None, store: Store, cache: ResponseCache | None, limit: int | None, seed: int,
                 table: PriceTable, max_tokens: int | None, judge_max_tokens: int | None,
                 model_options: dict[str, Any]) -> dict[str, Any]:
    """What each ``rag:`` task's :func:`hyouka.evaluate` is given, to run it and to price it alike (few-shot
    examples: other rows of its file, without their chunks)."""
    return {"index": index, "k": k, "metrics": metrics, "judge": judge, "judge_options": judge_options,
            "num_fewshot": num_fewshot, "store": store, "cache": cache if cache is not None else False,
            "limit": limit, "seed": seed, "prices": table,
            **({"max_tokens": max_tokens} if max_tokens else {}),
            **({"judge_max_tokens": judge_max_tokens} if judge_max_tokens else {}), **model_options}


def _task_to_resume(
    stored: dict[str, Any], built: list[tuple[Task, str | None]], judge_tasks: list[str]
) -> tuple[Task, str | None]:
    """The one task of ``built`` that the stored run ran (``run(model, tasks, resume=id)``)."""
    require_task_run(stored, "resumed with hyouka.run (`hyouka run --resume`)")
    for task, _ in built:
        if task.name == stored["task"]:
            return task, stored.get("suite")
    asked = [t.name for t, _ in built] + judge_tasks
    raise ResumeMismatchError(
        f"run {stored['id']} is a run of task {stored['task']!r}; this command runs {', '.join(asked) or 'no task'}. "
        "Resume it with --tasks set to its task, or give only --resume to continue it as it was made"
    )


def _after_model_work(result: EvalResult, started: float) -> EvalResult:
    """``result``, once a run that called the model for a while has had its garbage collected.

    Model work (tokenising, batching) keeps many objects alive long enough to age, which leaves
    the collector's full pass nearly due; in a process holding torch it walks some 400k objects
    (about 0.25 s). Taking it here, after seconds of model calls, spares the next run answered
    from the cache, which would otherwise pay it several times over its own length.
    """
    if any(r.model_calls for r in result.runs) and time.perf_counter() - started >= COLLECT_AFTER_S:
        gc.collect()
    return result


def _build_tasks(
    planned: list[tuple[str, str | None]],
    root: Path | None,
    files: dict[str, Path],
    prompt_family: str | None,
    num_fewshot: int | None,
    seed: int,
    skipped: dict[str, str],
) -> list[tuple[Task, str | None]]:
    """Tasks with their data loaded; a suite's tasks without data go to ``skipped`` with the reason."""
    out = []
    for task_name, suite in planned:
        spec = load_task(task_name)
        task = Task(
            spec,
            data_dir=root,
            data_file=files.get(task_name) or files.get(spec.task),  # lm-eval:NAME's file goes by NAME too
            family=prompt_family,
            num_fewshot=num_fewshot,
            seed=seed,
            source=task_source(task_name),
        )
        try:
            task.docs()
        except DataError as exc:
            if suite is None or isinstance(exc, (LabelError, DataPathError)):
                raise  # only a suite's task whose data is absent is skipped; bad data is an error
            skipped[task_name] = str(exc)
            continue
        out.append((task, suite))
    return out


def estimate(
    model: str | Model,
    tasks: str | list[str],
    *,
    mode: str = "auto",
    num_fewshot: int | None = None,
    prompt_family: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    data_files: dict[str, str | Path] | None = None,
    max_tokens: int | None = None,
    chat: bool = False,
    store: Store | str | None = None,
    cache: ResponseCache | str | Path | bool = True,
    prices: str | Path | PriceTable | None = None,
    judge: str | Model | None = None,
    judge_options: dict[str, Any] | None = None,
    judge_max_tokens: int | None = None,
    index: Any = None,
    k: int | None = None,
    metrics: str | Sequence[Any] | None = None,
    **model_options: Any,
) -> RunEstimate:
    """The calls, tokens and (upper) cost that :func:`run` with the same arguments would take; calls nothing.

    A ``rag:`` task's rows are its model's calls, each judge's (``judge ...``) and its questions'
    embeddings (``embed ...``), priced by :func:`hyouka.evaluation.estimate.estimate_evaluate`; their
    ``note`` says whether its prompts are exact or bounded (see :mod:`hyouka.rag.plan`).
    """
    check_mode(mode)
    check_limit(limit)
    tasks, rag_tasks = split_rag_tasks(tasks, index)
    planned = expand(tasks)
    if isinstance(model, str):
        parse_spec(model)
    check_fewshot(num_fewshot)
    files = _task_files(data_files, planned)
    skipped: dict[str, str] = {}
    built = _build_tasks(planned, jglue_dir(data_dir), files, prompt_family, num_fewshot, seed, skipped)
    the_store = store if isinstance(store, Store) else Store(store)
    backend = load_model(model, **model_options) if isinstance(model, str) else model
    spec_name = model if isinstance(model, str) else f"{type(model).__name__}:{backend.name}"
    out = estimate_tasks(
        backend, spec_name, [t for t, _ in built], store=the_store, executor=Executor(backend, _open_cache(cache)),
        price=load_prices(prices).lookup(spec_name, backend.identity()), mode=mode, limit=limit,
        max_tokens=max_tokens, use_chat=chat, model_options=_recordable(model_options),
    )
    if rag_tasks:
        table = load_prices(prices)
        the_cache = _open_cache(cache)
        judged_by = _metered_judge(judge, judge_options, table, Budget(), ready=False)
        spec_backend = MeteredModel(backend, None, Budget(), spec=spec_name)
        options = _rag_options(index, k, metrics, judged_by, judge_options, num_fewshot, the_store, the_cache, limit,
                               seed, table, max_tokens, judge_max_tokens, model_options)
        for name in rag_tasks:
            out.tasks += estimate_rag_task(name, spec_backend, **options)
    out.skipped = skipped
    return out


def resume_run(
    run_id: str,
    *,
    store: Store | str | None = None,
    cache: ResponseCache | str | Path | bool = True,
    progress: ProgressFactory | None = None,
    max_cost: float | None = None,
    prices: str | Path | PriceTable | None = None,
) -> EvalResult:
    """Continue an interrupted or failed run from its stored configuration."""
    started = time.perf_counter()
    the_store = store if isinstance(store, Store) else Store(store)
    stored = the_store.get_run(run_id)
    if stored.get("kind", "benchmark") != "benchmark":
        judged = resume_judge_run(stored, store=the_store, cache=_open_cache(cache),
                                  progress=progress(stored["task"]) if progress else None, prices=prices)
        return _after_model_work(EvalResult(model=judged.model, runs=[_judge_run_result(judged)]), started)
    require_task_run(stored, "resumed with hyouka.run (`hyouka run --resume`)")
    config = stored["config"]
    table = load_prices(prices)
    inner = load_model(config["model"], **config["model_options"])
    check_ready(inner)
    price = table.lookup(config["model"], inner.identity())
    backend = MeteredModel(inner, price.price if price else None, Budget(ceiling=max_cost))
    source = config.get("task_source") or config["task"]  # runs stored before task_source: a built-in name
    task = Task(
        load_task(source),
        data_dir=Path(config["data_dir"]) if config["data_dir"] else None,
        data_file=Path(config["data_file"]) if config["data_file"] else None,
        family=config["prompt_family"],
        num_fewshot=config["num_fewshot"],
        seed=config["seed"],
        source=source,
    )
    result = evaluate_task(
        backend,
        config["model"],
        task,
        store=the_store,
        executor=Executor(backend, _open_cache(cache)),
        mode=config["mode"],
        limit=config["limit"],
        max_tokens=config["max_tokens"],
        use_chat=config["chat"],
        model_options=config["model_options"],
        resume=stored["id"],
        suite=stored["suite"],
        progress=progress(config["task"]) if progress else None,
        prices=table,
    )
    return _after_model_work(EvalResult(model=config["model"], runs=[result]), started)


def _judge_run_result(judged: JudgeRunResult) -> RunResult:
    """A judge task's run in the shape of a benchmark task's."""
    return RunResult(
        run_id=judged.run_id, model=judged.model, task=judged.task, mode=judged.mode,
        aggregates=judged.aggregates, n_samples=judged.n_samples, status=judged.status, resumed=judged.resumed,
        model_calls=judged.model_calls, cache_hits=judged.cache_hits,
        extra={"kind": judged.kind, "judge": judged.judge, "calls": judged.calls, **judged.extra},
    )


def _open_cache(cache: ResponseCache | str | Path | bool) -> ResponseCache | None:
    if cache is False:
        return None
    if cache is True:
        return ResponseCache(cache_path())
    if isinstance(cache, ResponseCache):
        return cache
    return ResponseCache(cache)


def _recordable(options: dict[str, Any]) -> dict[str, Any]:
    """Model options safe to store (see :func:`hyouka.models.registry.recordable_options`)."""
    return recordable_options(options)
