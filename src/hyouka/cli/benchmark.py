"""Benchmark commands: run, runs, show, score, leaderboard, tasks."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import (
    BoardFormat,
    Format,
    JudgeBaseUrlOpt,
    JudgeMaxTokensOpt,
    StoreOpt,
    api_error,
    app,
    console,
    emit,
    err,
    escape,
    export_to_mlflow,
    fail,
    fmt,
    judge_backend_options,
    progress_bars,
    usd,
)
from hyouka.cli.text_table import TextTable, clean


def _parse_data_files(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep:
            fail(f"--data-file takes TASK=PATH, got {item!r}")
        out[task] = path
    return out


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
        "--num-fewshot", "-k", min=0, help="solved examples put before each question (default: the task's own); "
        "with --index, the chunks retrieved per question of rag: tasks (default 4)"
    )] = None,
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
    rag: dict[str, Any] = {}
    if index is not None:  # rag: tasks take no solved examples: -k counts the chunks retrieved instead
        rag, num_fewshot = {"index": index, "k": num_fewshot, "metrics": metrics}, None
    elif metrics is not None:
        fail("--metrics scores rag:<data file> tasks, which need --index (see `hyouka index list`)")
    if dry_run:  # accounting: estimate only (see _dry_run below)
        _dry_run(model, resume, output, tasks=tasks, mode=mode, num_fewshot=num_fewshot, prompt_family=prompt_family,
                 seed=seed, limit=limit, data_dir=data_dir, data_files=_parse_data_files(data_file),
                 max_tokens=max_tokens, chat=chat, store=store, cache=not no_cache, prices=prices,
                 **{k: v for k, v in options.items() if v is not None})
        return
    try:
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
                data_files=_parse_data_files(data_file),
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
def runs(store: StoreOpt = None, format: Format = "table") -> None:
    """List the runs in the store, oldest first; a running run whose owner is gone says so."""
    from hyouka.store.ownership import display_status
    from hyouka.store.reader import open_store

    rows = []
    for row in open_store(store).list_runs():
        row = {k: v for k, v in row.items() if k not in ("config", "model_identity", "versions")}
        row["owner_gone"] = display_status(row) == "running (owner gone)"
        rows.append(row)
    if format != "table":
        emit(rows, format)
        return
    table = TextTable(("run", "created", "status", "model", "task", "mode", "samples", "seconds"),
                      right=("samples", "seconds"))
    for row in rows:
        table.add_row(row["id"], str(row["created_at"])[:19], display_status(row), row["model"], row["task"],
                      row["mode"], row["n_samples"], fmt(row["duration_s"], 1))
    table.print()


def _sample_record(run_id: str, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "sample_index": s["sample_index"],
        "doc_id": s["doc_id"],
        "prompt": s["prompt"],
        "choices": [r.get("continuation") for r in s["requests"] if r.get("kind") == "loglikelihood"],
        "logprobs": s["details"].get("logprobs"),
        "output": s["output"],
        "extracted": s["extracted"],
        "prediction": s["prediction"],
        "gold": s["reference"],
        "metrics": s["metrics"],
        "status": s["status"],
        "error": s["error"],
        "latency_s": s["latency_s"],
        "prompt_tokens": s["prompt_tokens"],
        "completion_tokens": s["completion_tokens"],
    }


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="run id or unique prefix (`hyouka runs` lists them)")],
    store: StoreOpt = None,
    format: Format = "table",
    limit: Annotated[int | None, typer.Option(help="show at most N samples", min=1)] = None,
) -> None:
    """Per-sample prompts, outputs, extracted answers, gold answers and scores of a run."""
    from hyouka.store.errors import RunNotFoundError
    from hyouka.store.reader import open_store

    the_store = open_store(store)
    try:
        run_row = the_store.get_run(run_id)
    except RunNotFoundError as exc:
        fail(str(exc))
        return
    samples = the_store.samples(run_row["id"])[:limit]
    if format != "table":
        records = [_sample_record(run_row["id"], s) for s in samples]
        run = {k: v for k, v in run_row.items() if k not in ("config", "model_identity", "versions")}
        emit({"run": run, "samples": records}, format, lines=records)
        return
    out = [f"run {run_row['id']}: {clean(run_row['model'])} on {run_row['task']} ({run_row['mode']}), "
           f"{run_row['status']}; samples shown: {len(samples)} of {run_row['n_samples']}"]
    for s in samples:
        output = s["output"] if s["output"] is not None else _fmt_logprobs(s["details"].get("logprobs"))
        scores = " ".join(f"{k}={fmt(v, 3)}" for k, v in s["metrics"].items())
        out.append("")
        out.append(f"#{s['sample_index']}  {s['status']}  gold {clean(str(s['reference']))}  "
                   f"extracted {clean(str(s['extracted']))}  {scores}".rstrip())
        out.append(f"  prompt (end): {clean(s['prompt'][-80:])}")
        out.append(f"  output: {clean(str(output))}")
        if s["error"]:
            out.append(f"  error: {clean(s['error'])}")
    sys.stdout.write("\n".join(out) + "\n")


def _fmt_logprobs(values: list[float] | None) -> str:
    return "" if not values else "logprobs " + ", ".join(f"{v:.2f}" for v in values)


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


@app.command()
def leaderboard(
    suite: Annotated[
        str, typer.Option(help="auto: a table per suite, MT-Bench, eval runs and other tasks; a suite name or "
                               "file: its table; none: every task and judge score, no average")
    ] = "auto",
    store: StoreOpt = None,
    format: Annotated[BoardFormat, typer.Option(
        "--format", help="table, json (one document), jsonl (one row per line), or a report table: "
                         "markdown, csv, html (with cost and latency)")] = "table",
) -> None:
    """Models x tasks from the completed runs: one table per kind of evaluation, suite averages where complete."""
    from hyouka.report.leaderboard import build_leaderboards
    from hyouka.report.tables import headers, text_rows
    from hyouka.store.reader import open_store

    the_store = open_store(store)
    try:
        boards = build_leaderboards(the_store, suite=suite)
    except ValueError as exc:
        fail(f"--suite: {exc}")
        return
    if format in ("json", "jsonl"):
        emit([r for b in boards for r in b.to_records()], format)
        return
    if format in ("markdown", "md", "csv", "html"):  # report formats, with cost and latency (hyouka.report.tables)
        _print_boards(boards, the_store, format)
        return
    if not boards:
        print("no completed runs in the store")
    for i, board in enumerate(boards):
        columns = headers(board, False)
        table = TextTable(columns, title=board.title or f"leaderboard ({board.suite or 'all tasks'})",
                          right=[c for j, c in enumerate(columns) if j == 0 or j > 2])
        for cells in text_rows(board):
            table.add_row(*cells)
        if i:
            print()
        table.print()
        for note in board.notes:
            err.print(f"[yellow]note:[/] {escape(note)}")


@app.command("tasks")
def list_tasks(format: Format = "table") -> None:
    """List the built-in tasks, suites and prompt families."""
    from hyouka.tasks.prompts import PROMPT_FAMILIES
    from hyouka.tasks.registry import builtin_suites, builtin_task_names, load_task

    tasks = []
    for name in builtin_task_names():
        spec = load_task(name)
        tasks.append({"task": name, "version": spec.version, "modes": list(spec.modes),
                      "metrics": [m.metric for m in spec.metric_list], "description": spec.description})
    suites = [{"suite": s.suite, "tasks": [{"task": e.task, "metric": e.metric} for e in s.tasks]}
              for s in builtin_suites().values()]
    families = [{"prompt_family": f.name, "description": f.description} for f in PROMPT_FAMILIES.values()]
    if format != "table":
        emit({"tasks": tasks, "suites": suites, "prompt_families": families}, format,
             lines=[*tasks, *suites, *families])
        return
    table = TextTable(("task", "version", "modes", "metrics", "description"), title="tasks")
    for t in tasks:
        table.add_row(t["task"], t["version"], ", ".join(t["modes"]), ", ".join(t["metrics"]), t["description"])
    table.print()
    lines = [f"suite {s['suite']}: " + ", ".join(f"{e['task']} ({e['metric']})" for e in s["tasks"]) for s in suites]
    lines += [f"prompt family {f['prompt_family']}: {f['description']}" for f in families]
    sys.stdout.write("\n".join(lines) + "\n")


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


def _print_boards(boards: list[Any], the_store: Any, fmt: str) -> None:
    from hyouka.report.summary import board_stats
    from hyouka.report.tables import render_boards
    from hyouka.report.views import load_views

    ids = list(dict.fromkeys(i for board in boards for row in board.rows for i in row.run_ids))
    views = load_views(the_store, ids, samples=False) if ids else []
    sys.stdout.write(render_boards(boards, fmt, [board_stats(b, views) for b in boards]) + "\n")
