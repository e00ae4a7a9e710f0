"""One cell of the ladder (a model on a rung): run it as an ordinary stored run, price it, read it back.

A cell is made by the API every other run goes through: ``hyouka.run`` for a benchmark task
(``jsquad``, a task file), ``hyouka.evaluate`` for one's own data (``qa.jsonl``, ``rag:qa.jsonl``).
So a cell is cached, resumable, owned and costed like any run, and one that the store already
holds completed is taken up again, not made twice (``reuse_completed``).

Read back from the store, a cell gives its score with the 95% interval, the cost per 1,000
questions of the model's own calls, with the retrieval's embedding calls (a judge's calls are priced
apart: they are the evaluation's cost, not the answer's), per-call latency percentiles and
per-sample scores for paired comparisons.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hyouka.engine.accounting import call_rows, price_for, run_accounting
from hyouka.engine.cache import ResponseCache
from hyouka.evaluation.backends import spec_name
from hyouka.evaluation.ladder.rungs import Line, Rung
from hyouka.pricing.table import PriceTable
from hyouka.store.store import Store
from hyouka.store.subject import subject_model

__all__ = ["CellSettings", "LadderError", "LadderTask", "Measure", "estimate_cell", "measure_cell", "parse_task",
           "run_cell"]

DATA_SUFFIXES = (".jsonl", ".csv", ".json", ".parquet")


class LadderError(ValueError):
    """A ladder that cannot be climbed as asked: the cause, and what to give instead."""


@dataclass(frozen=True)
class LadderTask:
    """What every cell evaluates: a benchmark task, or one's own data (``retrieval``: given as ``rag:FILE``)."""

    kind: Literal["benchmark", "data"]
    name: str
    retrieval: bool = False

    @property
    def label(self) -> str:
        return f"rag:{self.name}" if self.retrieval else self.name


def parse_task(tasks: str) -> LadderTask:
    """One task name or task file, or a data file (``qa.jsonl``; ``rag:qa.jsonl`` for rungs with retrieval)."""
    names = [t.strip() for t in str(tasks).split(",") if t.strip()]
    if len(names) != 1:
        raise LadderError(f"a ladder climbs one task, got {len(names)} ({tasks!r}); run one ladder per task")
    name = names[0]
    retrieval = name.startswith("rag:")
    target = name.removeprefix("rag:")
    if retrieval or Path(target).suffix.lower() in DATA_SUFFIXES:
        if not Path(target).expanduser().is_file():
            raise LadderError(f"data file {target} does not exist")
        return LadderTask("data", target, retrieval)
    from hyouka.tasks.registry import builtin_suites, load_task

    if target in builtin_suites():
        raise LadderError(f"{target} is a suite; a ladder climbs one task of it (e.g. "
                          f"{builtin_suites()[target].tasks[0].task})")
    load_task(target)  # an unknown name fails here, with the known ones
    return LadderTask("benchmark", target)


@dataclass
class CellSettings:
    """What every cell of one ladder shares."""

    task: LadderTask
    metric: str
    store: Store
    cache: ResponseCache | bool
    prices: PriceTable
    judge: Any = None
    judge_options: dict[str, Any] = field(default_factory=dict)
    judge_max_tokens: int | None = None
    index: Any = None
    limit: int | None = None
    seed: int = 0
    mode: str = "auto"
    max_tokens: int | None = None
    chat: bool = False
    data_dir: str | Path | None = None
    data_files: dict[str, str | Path] | None = None
    language: str = "ja"
    columns: dict[str, str | None] = field(default_factory=dict)  # inputs, targets, context, id_column


def check_rung(settings: CellSettings, rung: Rung) -> None:
    """Refuse, before anything runs, a rung that the task cannot take."""
    task = settings.task
    if task.kind == "benchmark":
        if rung.rag is not None:
            raise LadderError(f"rung {rung.name}: retrieval (rag:{rung.rag}) needs one's own data and an index; "
                              f"{task.name} is a benchmark task (give --tasks rag:qa.jsonl --index NAME)")
        if rung.system_prompt is not None:
            raise LadderError(f"rung {rung.name}: system_prompt is for one's own data; a benchmark task's template "
                              "is its prompt_family")
        return
    if rung.prompt_family is not None:
        raise LadderError(f"rung {rung.name}: prompt_family is a benchmark task's layout; for one's own data give "
                          "system_prompt")
    if rung.rag is not None:
        missing = rag_missing()
        if missing:
            raise LadderError(f"rung {rung.name}: {missing}")
        if settings.index is None:
            raise LadderError(f"rung {rung.name} retrieves {rung.rag} chunks: give the index (--index NAME)")


def rag_missing() -> str | None:
    """Why retrieval rungs cannot run in this build, or ``None`` when they can."""
    from hyouka.evaluation.core import evaluate

    if "index" not in inspect.signature(evaluate).parameters:
        return ("retrieval rungs need hyouka.evaluate(..., index=, k=) from the RAG room (hyouka.rag, issue 14), "
                "which this build does not have yet")
    return None


def _judge(settings: CellSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"judge": settings.judge}
    if settings.judge_options:
        out["judge_options"] = settings.judge_options
    if settings.judge_max_tokens is not None:
        out["judge_max_tokens"] = settings.judge_max_tokens
    return out


def _data_kwargs(settings: CellSettings, rung: Rung) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"metrics": [settings.metric], "num_fewshot": rung.fewshot, "seed": settings.seed,
                              "limit": settings.limit, "language": settings.language, "prices": settings.prices,
                              "cache": settings.cache, "system_prompt": rung.system_prompt, **_judge(settings),
                              **{k: v for k, v in settings.columns.items() if v is not None}}
    if settings.max_tokens is not None:
        kwargs["max_tokens"] = settings.max_tokens
    if rung.rag is not None:
        kwargs.update(index=settings.index, k=rung.rag)
    return kwargs


def _benchmark_kwargs(settings: CellSettings, rung: Rung) -> dict[str, Any]:
    return {"mode": settings.mode, "num_fewshot": rung.fewshot, "prompt_family": rung.prompt_family,
            "seed": settings.seed, "limit": settings.limit, "data_dir": settings.data_dir,
            "data_files": settings.data_files, "max_tokens": settings.max_tokens, "chat": settings.chat,
            "cache": settings.cache, "prices": settings.prices}


@dataclass
class CellRun:
    """The run a cell made or took up, and the calls it made this time."""

    run_id: str
    model_calls: int
    cache_hits: int
    reused: bool


def run_cell(settings: CellSettings, line: Line, rung: Rung,
             progress: Callable[[int, int], None] | None = None) -> CellRun:
    """Run one cell through the API every run takes; a completed run of the same configuration is reused."""
    if settings.task.kind == "benchmark":
        from hyouka.api import run

        result = run(line.model, settings.task.name, store=settings.store, progress=(lambda _: progress)
                     if progress else None, reuse_completed=True, **_benchmark_kwargs(settings, rung), **line.options)
        cell = result.runs[0]
        return CellRun(cell.run_id, cell.model_calls, cell.cache_hits, bool(cell.extra.get("reused")))
    from hyouka.evaluation.core import evaluate

    out = evaluate(line.model, settings.task.name, store=settings.store, progress=progress, reuse_completed=True,
                   **_data_kwargs(settings, rung), **line.options)
    calls = out.calls.get("model") or {}
    return CellRun(out.run_id, int(calls.get("model_calls", 0)), int(calls.get("cache_hits", 0)), out.reused)


@dataclass
class CellEstimate:
    """A cell's dry run: the calls it would make and their upper cost (model and judge apart)."""

    n_questions: int
    n_calls: int
    n_cached: int
    prompt_tokens: int
    max_completion_tokens: int
    cost_usd: float | None
    judge_calls: int = 0
    judge_cost_usd: float | None = 0.0
    retrieval: str | None = None  # how a retrieval rung's prompts were priced (exact, or bounded)
    embedding_calls: int = 0


def estimate_cell(settings: CellSettings, line: Line, rung: Rung) -> CellEstimate:
    """Price one cell before any call: the runner's own plan (benchmark tasks) or evaluate's (one's data)."""
    if settings.task.kind == "benchmark":
        from hyouka.api import estimate

        est = estimate(line.model, settings.task.name, store=settings.store, **_benchmark_kwargs(settings, rung),
                       **line.options)
        task = est.tasks[0]
        return CellEstimate(task.n_docs - task.n_done, task.n_calls, task.n_cached, task.prompt_tokens,
                            task.max_completion_tokens, task.cost_usd)
    from hyouka.evaluation.estimate import estimate_evaluate

    data = estimate_evaluate(line.model, settings.task.name, **_data_kwargs(settings, rung), **line.options)
    cost = data.model.cost_usd if data.model.priced else None
    embedding = data.embedding_cost_usd
    if cost is not None and embedding is not None:  # the questions' embeddings are the answer's cost, as measured
        cost += embedding
    plan = data.retrieval
    return CellEstimate(data.n_rows, data.model.n_calls, data.model.n_cached, data.model.prompt_tokens,
                        data.model.max_completion_tokens, cost, judge_calls=sum(j.n_calls for j in data.judges),
                        judge_cost_usd=data.judge_cost_usd, retrieval=plan.method if plan is not None else None,
                        embedding_calls=plan.embed_calls if plan is not None else 0)


@dataclass
class Measure:
    """A finished cell's numbers, read from the store."""

    score: float | None
    ci_low: float | None
    ci_high: float | None
    n_scored: int
    n_total: int
    higher_is_better: bool
    cost_per_1k: float | None
    judge_cost_per_1k: float | None
    latency_p50: float | None
    latency_p95: float | None
    per_sample: dict[str, float]


def _per_sample(samples: list[dict[str, Any]], metric: str) -> dict[str, float]:
    ids = [s.get("doc_id") for s in samples]
    by_id = all(ids) and len(set(ids)) == len(ids)
    out = {}
    for s in samples:
        value = (s.get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[str(s["doc_id"] if by_id else s["sample_index"])] = float(value)
    return out


def _per_1k(cost: float | None, n: int) -> float | None:
    return None if cost is None or n < 1 else cost / n * 1000.0


def measure_cell(store: Store, run_id: str, metric: str, prices: PriceTable) -> Measure:
    """Score, interval, cost per 1,000 questions (model's calls; the judge's apart), latency, per-sample scores."""
    run = store.get_run(run_id)
    aggregates = store.aggregates(run_id)
    if metric not in aggregates:
        raise LadderError(f"run {run_id} has no metric {metric!r}; it has {', '.join(aggregates) or 'none'} "
                          "(give --metric)")
    agg = aggregates[metric]
    samples = store.samples(run_id)
    config = run.get("config") or {}
    n = int(run.get("n_samples") or len(samples))
    judged = (run.get("kind") or "benchmark") != "benchmark"
    if judged:
        subject = subject_model(run)
        answers = [s["details"]["answer"] for s in samples if isinstance((s.get("details") or {}).get("answer"), dict)]
        own = run_accounting([{"responses": answers}], price_for(prices, subject, config.get("model_identity")))
        judge = run_accounting(samples, price_for(prices, run["model"], run.get("model_identity")))
        judge_cost = _per_1k(judge["cost_usd"], n)
    else:
        own = run_accounting([{"responses": call_rows(samples)}],
                             price_for(prices, run["model"], run.get("model_identity")))
        judge_cost = None
    latency = own["latency_s"]
    cost = own["cost_usd"]
    retrieval = [((s.get("details") or {}).get("retrieval") or {}).get("cost_usd") for s in samples]
    if cost is not None and any(c is not None for c in retrieval):  # embedding the questions is the answer's cost too
        cost += math.fsum(c for c in retrieval if c is not None)
    value = agg.get("value")
    return Measure(
        score=value if isinstance(value, (int, float)) and math.isfinite(value) else None,
        ci_low=agg.get("ci_low"), ci_high=agg.get("ci_high"), n_scored=int(agg.get("n_scored") or 0),
        n_total=int(agg.get("n_total") or n), higher_is_better=bool(agg.get("higher_is_better", True)),
        cost_per_1k=_per_1k(cost, n), judge_cost_per_1k=judge_cost,
        latency_p50=latency["p50"], latency_p95=latency["p95"], per_sample=_per_sample(samples, metric),
    )


def model_label(model: Any) -> str:
    """The name a cell shows for its model."""
    return spec_name(model)


def default_metric(task: LadderTask) -> str:
    """A benchmark task's headline metric (its first); one's own data needs ``--metric``."""
    if task.kind == "data":
        raise LadderError("give the metric the ladder climbs on (--metric answer_correctness, char_f1…)")
    from hyouka.tasks.registry import load_task

    return load_task(task.name).metric_list[0].metric
