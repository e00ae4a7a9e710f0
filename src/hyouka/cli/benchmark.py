"""Benchmark commands: run and score (the read-only runs, show, leaderboard and tasks are in browse)."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import (
    Format,
    JudgeBaseUrlOpt,
    JudgeMaxTokensOpt,
    StoreOpt,
    api_error,
    console,
    emit,
    err,
    escape,
    export_to_mlflow,
    fail,
    fmt,
    judge_backend_options,
    parse_data_files,
    progress_bars,
    usd,
)
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS


def _k_options(num_fewshot: int | None, top_k: int | None, short_k: int | None, index: str | None
               ) -> tuple[int | None, int | None]:
    """``(num_fewshot, top_k)`` from ``--num-fewshot``, ``--top-k`` and ``-k``, which is the first without
    ``--index`` and the second with it (``hyouka run --index blog -k 4``: four chunks per question)."""
    if top_k is not None and index is None:
        fail("--top-k counts the chunks of rag:<data file> tasks, which need --index (see `hyouka index list`)")
    if short_k is None:
        return num_fewshot, top_k
    if index is None:
        if num_fewshot is not None and num_fewshot != short_k:
            fail(f"-k is --num-fewshot: give one of them (-k {short_k}, --num-fewshot {num_fewshot})")
        return short_k, top_k
    if top_k is not None and top_k != short_k:
        fail(f"with --index, -k is --top-k: give one of them (-k {short_k}, --top-k {top_k})")
    if short_k < 1:
        fail("with --index, -k is --top-k, the chunks per question: give 1 or more")
    return num_fewshot, short_k


@app.command()
def run(
    model: Annotated[str | None, typer.Option(
        "--model", "-m",
        help="the model to evaluate: hf:<name-or-path>, vllm:<name-or-path>, openai:<model>, azure:<deployment>, "
             "databricks:<endpoint>, recorded:<file>…",
    )] = None,
    tasks: Annotated[str, typer.Option("--tasks", "-t", help="comma-separated tasks or suites")] = "jglue",
    mode: Annotated[str, typer.Option(
        help="how multiple-choice tasks are scored: auto, loglikelihood or generate")] = "auto",
    num_fewshot: Annotated[int | None, typer.Option(
        "--num-fewshot", min=0, help="solved examples put before each question (default: the task's own; rag: "
        "tasks: none, else other rows of their data file, without their chunks)"
    )] = None,
    top_k: Annotated[int | None, typer.Option(
        "--top-k", min=1, help="with --index: chunks retrieved per question of rag: tasks (default 4)")] = None,
    short_k: Annotated[int | None, typer.Option(
        "-k", min=0, help="--num-fewshot; with --index, --top-k instead (as `hyouka index search -k`)")] = None,
    prompt_family: Annotated[str | None, typer.Option(
        "--prompt-family", help="prompt layout: plain (答え：), alpaca (### 指示 / 入力 / 応答), raw (lm-eval's: "
        "the task's own text) or llm-jp-eval (its wording of the JGLUE tasks); default: the task's own, else plain",
    )] = None,
    seed: Annotated[int, typer.Option(help="picks the few-shot examples and seeds sampling and the bootstrap")] = 0,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N documents of each task")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="JGLUE datasets/ folder (or HYOUKA_JGLUE_DIR)")] = None,
    data_file: Annotated[list[str], typer.Option(
        help="a task's data file, TASK=PATH (repeatable), e.g. marc_ja=valid.jsonl")] = [],  # noqa: B006
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", min=1, help="most tokens a model may generate per answer (default: the task's own)")] = None,
    chat: Annotated[bool, typer.Option(help="send generation prompts as chat messages")] = False,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key")] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    stream: Annotated[bool, typer.Option(help="openai: stream answers and record time to first token")] = False,
    tokenizer: Annotated[str | None, typer.Option(help="openai: the model's tokenizer (HF name or folder) for "
                                                       "log-likelihoods; default: the server's /tokenize")] = None,
    dtype: Annotated[str | None, typer.Option(help="hf: auto, float32, bfloat16, float16")] = None,
    device: Annotated[str | None, typer.Option(help="hf: auto, cpu, cuda")] = None,
    batch_size: Annotated[str | None, typer.Option(help="hf: a number or 'auto'")] = None,
    revision: Annotated[str | None, typer.Option(help="hf:/vllm: model revision")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="hf:/vllm: run the model repository's code")] = False,
    api_version: Annotated[str | None, typer.Option(help="azure: API version (else OPENAI_API_VERSION)")] = None,
    profile: Annotated[str | None, typer.Option(help="databricks: profile in ~/.databrickscfg")] = None,
    tensor_parallel_size: Annotated[int | None, typer.Option(help="vllm: GPUs to shard the model over")] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option(
        help="vllm: share of GPU memory to use (on CPU: of RAM)")] = None,
    max_model_len: Annotated[int | None, typer.Option(help="vllm: context length (default: the model's)")] = None,
    resume: Annotated[str | None, typer.Option(help="continue this unfinished run (id or prefix)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the results as JSON")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the calls, tokens and cost it would take")] = False,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="USD ceiling: refuse above it, stop before it",
                                                   min=0)] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="price table YAML, before the defaults")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="log the runs to MLflow (MLFLOW_TRACKING_URI)")] = False,
    judge: Annotated[str | None, typer.Option(
        "--judge", help="the judge of judge-graded tasks (ja_mt_bench): openai:gpt-4o, recorded:<judgments.jsonl>…")
    ] = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_max_tokens: JudgeMaxTokensOpt = None,
    index: Annotated[str | None, typer.Option(
        "--index", help="the index that rag:<data file> tasks answer from (`hyouka index list`)")] = None,
    metrics: Annotated[str | None, typer.Option(
        "--metrics", help="rag: tasks: comma-separated heuristic, judge and retrieval metrics, e.g. "
        "answer_correctness,faithfulness,rouge_l,context_recall,recall_at_k")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="serve the model's calls from replicas on a Ray cluster: auto (RAY_ADDRESS, one running "
                      "here, else a new local one) or ray://head:10001; token authentication on")] = None,
    shards: Annotated[int | None, typer.Option(
        "--shards", min=1, help="data-parallel replicas of the model sharing each task's documents (with --ray: "
                                "default one per GPU for hf:/vllm:, one per CPU for endpoints; without: copies here)")
    ] = None,
) -> None:
    """Evaluate a model on tasks; running the same command again resumes an unfinished run."""
    from hyouka.api import run as run_api
    from hyouka.engine.budget import BudgetExceededError

    if model is None and resume is None:
        fail("give --model (e.g. hf:rinna/japanese-gpt-neox-3.6b) or --resume RUN_ID")
    options: dict[str, Any] = {
        "base_url": base_url,
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "stream": stream or None,
        "tokenizer": tokenizer,
        "dtype": dtype,
        "device": device,
        "batch_size": (int(batch_size) if batch_size and batch_size.isdigit() else batch_size),
        "revision": revision,
        "trust_remote_code": trust_remote_code or None,
        "api_version": api_version,
        "profile": profile,
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_model_len": max_model_len,
    }
    num_fewshot, top_k = _k_options(num_fewshot, top_k, short_k, index)
    rag: dict[str, Any] = {}
    if index is not None:
        rag = {"index": index, "k": top_k, "metrics": metrics}
    elif metrics is not None:
        fail("--metrics scores rag:<data file> tasks, which need --index (see `hyouka index list`)")
    if dry_run:  # accounting: estimate only (see _dry_run below)
        _dry_run(model, resume, output, tasks=tasks, mode=mode, num_fewshot=num_fewshot, prompt_family=prompt_family,
                 seed=seed, limit=limit, data_dir=data_dir, data_files=parse_data_files(data_file),
                 max_tokens=max_tokens, chat=chat, store=store, cache=not no_cache, prices=prices, judge=judge,
                 judge_options=judge_backend_options(judge_base_url), judge_max_tokens=judge_max_tokens, **rag,
                 **{k: v for k, v in options.items() if v is not None})
        return
    try:
        replicas = _replicas(model, resume, options, shards, ray)
        with progress_bars() as progress:
            result = run_api(
                model or "",
                tasks,
                mode=mode,
                num_fewshot=num_fewshot,
                prompt_family=prompt_family,
                seed=seed,
                limit=limit,
                data_dir=data_dir,
                data_files=parse_data_files(data_file),
                max_tokens=max_tokens,
                chat=chat,
                store=store,
                cache=not no_cache,
                resume=resume,
                progress=progress,
                max_cost=max_cost,
                prices=prices,
                judge=judge,
                judge_options=judge_backend_options(judge_base_url),
                judge_max_tokens=judge_max_tokens,
                **rag,
                backend=replicas,
                **{k: v for k, v in options.items() if v is not None},
            )
    except BudgetExceededError as exc:
        err.print(f"[yellow]budget:[/] {escape(str(exc))}")
        raise typer.Exit(code=3) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (hyouka.engine.signals.Interrupted)
        err.print("[yellow]interrupted:[/] finished samples are stored; run the same command to resume")
        raise typer.Exit(code=128 + getattr(exc, "signum", 2)) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        fail(api_error(exc))
        return
    _print_result(result)
    _print_accounting(result)
    if output:
        output.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if mlflow:
        export_to_mlflow(store, [r.run_id for r in result.runs], prices)
    _report_failed_calls(result, store)


def _replicas(model: str | None, resume: str | None, options: dict[str, Any], shards: int | None,
              ray: str | None) -> Any:
    """``--shards``/``--ray``: the model's replicas (hyouka.jobs.replicas), else None."""
    if not (shards or ray):
        return None
    if resume or not model:
        fail("--ray and --shards need --model (a resumed run continues with its own single model)")
    from hyouka.jobs.replicas import build_replicas

    return build_replicas(model or "", options, shards=shards, ray=ray)


# statuses of samples whose model call never gave an answer (format and parse errors did get one)
_ANSWERED = frozenset({"ok", "format_error", "parse_error"})


def _report_failed_calls(result: Any, store: str | None) -> None:
    """End with how many samples' calls failed; exit 1 when no call succeeded at all."""
    counts: dict[str, int] = {}
    total = 0
    for r in result.runs:
        for status, n in (r.extra.get("statuses") or {}).items():
            total += n
            if status not in _ANSWERED:
                counts[status] = counts.get(status, 0) + n
    failed = sum(counts.values())
    if not failed:
        return
    detail = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
    if failed == total:
        from hyouka.store.store import Store

        first = next((r for r in result.runs if (r.extra.get("statuses") or {})), None)
        errors = [s["error"] for s in Store(store).samples(first.run_id, indices=[0])] if first else []
        reason = f"; the first error: {errors[0]}" if errors and errors[0] else ""
        err.print(f"[bold red]error:[/] no call succeeded: all {total} samples failed ({escape(detail)})"
                  f"{escape(reason)}", soft_wrap=True)
        raise typer.Exit(code=1)
    runs = " ".join(r.run_id for r in result.runs if set(r.extra.get("statuses") or {}) - _ANSWERED)
    err.print(f"[yellow]{failed} of {total} samples failed[/] ({escape(detail)}); they are not scored "
              f"(`hyouka show {runs}` lists their errors)", soft_wrap=True)


def _print_result(result: Any) -> None:
    table = TextTable(("task", "mode", "metric", "value", "95% CI", "n", "run"), title=clean(result.model),
                      right=("value", "n"))
    for r in result.runs:
        for name, agg in r.aggregates.items():
            ci = f"[{fmt(agg['ci_low'], 3)}, {fmt(agg['ci_high'], 3)}]" if agg["ci_low"] is not None else ""
            table.add_row(r.task, r.mode, name, fmt(agg["value"]), ci, f"{agg['n_scored']}/{agg['n_total']}",
                          r.run_id)
    table.print()
    for suite, info in result.suite_scores.items():
        if info["complete"]:
            console.print(f"{suite}: {fmt(info['score'])} over all {info['n_tasks']} tasks")
        else:  # an average over some tasks is no suite score: say which are missing instead
            console.print(f"{suite}: no average (partial: {len(info['tasks'])}/{info['n_tasks']} tasks; "
                          f"missing {', '.join(info['missing'])})")
    for task, reason in result.skipped.items():
        err.print(f"[yellow]skipped {task}:[/] {escape(reason)}")


@app.command()
def score(
    run_id: Annotated[str, typer.Argument(help="run id or unique prefix")],
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Recompute a run's metrics from its stored records; no model is called."""
    from hyouka.engine.rescore import rescore
    from hyouka.store.store import RunNotFoundError, Store

    try:
        aggregates = rescore(Store(store), run_id)
    except (RunNotFoundError, ValueError) as exc:
        fail(api_error(exc))
        return
    if format != "table":
        emit(aggregates, format, lines=[{"metric": name, **agg} for name, agg in aggregates.items()])
        return
    table = TextTable(("metric", "value", "95% CI", "n"), title=f"rescored {run_id}", right=("value", "n"))
    for name, agg in aggregates.items():
        table.add_row(name, fmt(agg["value"]), f"[{fmt(agg['ci_low'], 3)}, {fmt(agg['ci_high'], 3)}]",
                      f"{agg['n_scored']}/{agg['n_total']}")
    table.print()


def _dry_run(model: str | None, resume: str | None, output: Path | None, **kwargs: Any) -> None:
    """Print what ``run`` would call and cost."""
    from hyouka.api import estimate

    if resume or not model:
        fail("--dry-run needs --model (it estimates a new run, not --resume)")
        return
    try:
        plan = estimate(model, kwargs.pop("tasks"), **kwargs)
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        fail(api_error(exc))
        return
    if not plan.tasks:  # every task was skipped: there is nothing to estimate, not a run that costs $0
        reasons = "; ".join(f"{task}: {reason}" for task, reason in plan.skipped.items())
        fail(f"the dry run found no data for any task ({reasons})" if reasons else "the dry run found no task to run")
        return
    price = plan.price
    columns = ("task", "mode", "docs", "done", "requests", "cached", "calls", "prompt tokens",
               "max completion tokens", "cost ≤")
    table = TextTable(columns, title=f"dry run: {clean(plan.model)}", right=columns[2:])
    for t in plan.tasks:
        table.add_row(t.task, t.mode, str(t.n_docs), str(t.n_done), str(t.n_requests), str(t.n_cached + t.n_duplicates),
                      str(t.n_calls), f"{t.prompt_tokens:,}", f"{t.max_completion_tokens:,}", usd(t.cost_usd))
    table.add_row("total", "", "", "", "", "", str(plan.n_calls), f"{plan.prompt_tokens:,}",
                  f"{plan.max_completion_tokens:,}", usd(plan.cost_usd))
    table.print()
    if price is None:
        console.print("[yellow]no price for this model[/]: add it to a --prices file to see a cost")
    else:
        version = f" ({escape(price['version'])})" if price["version"] else ""
        console.print(f"price: {escape(price['key'])} from {escape(price['source'])}{version}; completions are "
                      "counted at their max_tokens, so the cost is an upper estimate")
    for t in plan.tasks:  # rag: tasks: whether their prompts are exact or bounded, an unpriced judge or embedder
        if t.note:
            console.print(f"{escape(t.task)} ({escape(t.mode)}): {escape(t.note)}")
    for task, reason in plan.skipped.items():
        err.print(f"[yellow]skipped {task}:[/] {escape(reason)}")
    if output:
        output.write_text(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")


def _print_accounting(result: Any) -> None:
    for r in result.runs:
        acc = r.extra.get("accounting") or {}
        if not acc:
            continue
        lat = acc.get("latency_s") or {}
        console.print(
            f"{r.task}: {acc['n_calls']} calls ({acc['n_cached_calls']} cached), "
            f"{acc['prompt_tokens']:,} + {acc['completion_tokens']:,} tokens, cost {usd(acc.get('cost_usd'))} "
            f"(spent {usd(acc.get('spent_usd'))}), latency p50 {fmt(lat.get('p50'), 3)} s / p95 "
            f"{fmt(lat.get('p95'), 3)} s"
        )
