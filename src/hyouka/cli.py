"""Command-line interface: a thin layer over the Python API."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="hyouka (評価): evaluate large language models, Japanese first.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

Format = Annotated[str, typer.Option("--format", help="table or json (leaderboard: also markdown, csv, html)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="SQLAlchemy URL of the results store")]
JudgeOpt = Annotated[str | None, typer.Option("--judge", help="judge: openai:gpt-4o, recorded:<judgments.jsonl>…")]
JudgeBaseUrlOpt = Annotated[str | None, typer.Option("--judge-base-url", help="the judge's OpenAI-compatible endpoint")]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


@contextmanager
def _progress() -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    ) as bar:

        def factory(name: str) -> Callable[[int, int], None]:
            task_id = bar.add_task(name, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task_id, completed=done, total=total)

            return update

        yield factory


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _parse_data_files(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep:
            _fail(f"--data-file takes TASK=PATH, got {item!r}")
        out[task] = path
    return out


@app.command()
def run(
    model: Annotated[str | None, typer.Option("--model", "-m", help="hf:<name-or-path>, openai:<model>…")] = None,
    tasks: Annotated[str, typer.Option("--tasks", "-t", help="comma-separated tasks or suites")] = "jglue",
    mode: Annotated[str, typer.Option(help="auto, loglikelihood or generate")] = "auto",
    num_fewshot: Annotated[int | None, typer.Option("--num-fewshot", "-k")] = None,
    prompt_family: Annotated[str, typer.Option("--prompt-family", help="plain or alpaca")] = "plain",
    seed: int = 0,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N documents of each task")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="JGLUE datasets/ folder (or HYOUKA_JGLUE_DIR)")] = None,
    data_file: Annotated[list[str], typer.Option(help="TASK=PATH, e.g. marc_ja=valid.jsonl")] = [],  # noqa: B006
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    chat: Annotated[bool, typer.Option(help="send generation prompts as chat messages")] = False,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key")] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    stream: Annotated[bool, typer.Option(help="openai: stream answers and record time to first token")] = False,
    dtype: Annotated[str | None, typer.Option(help="hf: auto, float32, bfloat16, float16")] = None,
    device: Annotated[str | None, typer.Option(help="hf: auto, cpu, cuda")] = None,
    batch_size: Annotated[str | None, typer.Option(help="hf: a number or 'auto'")] = None,
    revision: Annotated[str | None, typer.Option(help="hf: model revision")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="hf: run the model repository's code")] = False,
    resume: Annotated[str | None, typer.Option(help="continue this run id")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the results as JSON")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the calls, tokens and cost it would take")] = False,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="USD ceiling: refuse above it, stop before it",
                                                   min=0)] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="price table YAML, before the defaults")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="log the runs to MLflow (MLFLOW_TRACKING_URI)")] = False,
    judge: JudgeOpt = None,  # judge tasks (ja_mt_bench)
    judge_base_url: JudgeBaseUrlOpt = None,
) -> None:
    """Evaluate a model on tasks; running the same command again resumes an unfinished run."""
    from hyouka.api import run as run_api
    from hyouka.engine.budget import BudgetExceededError

    if model is None and resume is None:
        _fail("give --model (e.g. hf:rinna/japanese-gpt-neox-3.6b) or --resume RUN_ID")
    options: dict[str, Any] = {
        "base_url": base_url,
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "stream": stream or None,
        "dtype": dtype,
        "device": device,
        "batch_size": (int(batch_size) if batch_size and batch_size.isdigit() else batch_size),
        "revision": revision,
        "trust_remote_code": trust_remote_code or None,
    }
    if dry_run:  # accounting: estimate only (see _dry_run below)
        _dry_run(model, resume, output, tasks=tasks, mode=mode, num_fewshot=num_fewshot, prompt_family=prompt_family,
                 seed=seed, limit=limit, data_dir=data_dir, data_files=_parse_data_files(data_file),
                 max_tokens=max_tokens, chat=chat, store=store, cache=not no_cache, prices=prices,
                 **{k: v for k, v in options.items() if v is not None})
        return
    try:
        with _progress() as progress:
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
                judge_options=_judge_options(judge_base_url),
                **{k: v for k, v in options.items() if v is not None},
            )
    except BudgetExceededError as exc:
        err.print(f"[yellow]budget:[/] {escape(str(exc))}")
        raise typer.Exit(code=3) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished samples are stored; run the same command to resume")
        raise typer.Exit(code=130) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        _fail(str(exc))
        return
    _print_result(result)
    _print_accounting(result)
    if output:
        output.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if mlflow:
        _export_to_mlflow(store, [r.run_id for r in result.runs], prices)


def _print_result(result: Any) -> None:
    table = Table(title=f"{escape(result.model)}")
    for column in ("task", "mode", "metric", "value", "95% CI", "n", "run"):
        table.add_column(column)
    for r in result.runs:
        for name, agg in r.aggregates.items():
            ci = f"[{_fmt(agg['ci_low'], 3)}, {_fmt(agg['ci_high'], 3)}]" if agg["ci_low"] is not None else ""
            table.add_row(r.task, r.mode, name, _fmt(agg["value"]), ci, f"{agg['n_scored']}/{agg['n_total']}",
                          r.run_id)
    console.print(table)
    for suite, info in result.suite_scores.items():
        console.print(f"{suite}: {_fmt(info['score'])} over {len(info['tasks'])}/{info['n_tasks']} tasks")
    for task, reason in result.skipped.items():
        err.print(f"[yellow]skipped {task}:[/] {escape(reason)}")


@app.command()
def runs(store: StoreOpt = None, format: Format = "table") -> None:
    """List the runs in the store."""
    from hyouka.store.store import Store

    rows = Store(store).list_runs()
    if format == "json":
        for row in rows:
            row = {k: v for k, v in row.items() if k not in ("config", "model_identity", "versions")}
            print(json.dumps(row, ensure_ascii=False, default=str))
        return
    table = Table()
    for column in ("run", "created", "status", "model", "task", "mode", "samples", "seconds"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"], str(row["created_at"])[:19], row["status"], escape(row["model"]), row["task"],
                      row["mode"], str(row["n_samples"]), _fmt(row["duration_s"], 1))
    console.print(table)


@app.command()
def show(
    run_id: str,
    store: StoreOpt = None,
    format: Format = "table",
    limit: Annotated[int | None, typer.Option(help="show at most N samples")] = None,
) -> None:
    """Per-sample prompts, outputs, extracted answers, gold answers and scores of a run."""
    from hyouka.store.store import RunNotFoundError, Store

    the_store = Store(store)
    try:
        run_row = the_store.get_run(run_id)
    except RunNotFoundError as exc:
        _fail(str(exc))
        return
    samples = the_store.samples(run_row["id"])[:limit]
    if format == "json":
        for s in samples:
            record = {
                "run_id": run_row["id"],
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
            print(json.dumps(record, ensure_ascii=False, default=str))
        return
    console.print(f"run {run_row['id']}: {escape(run_row['model'])} on {run_row['task']} ({run_row['mode']}), "
                  f"{run_row['status']}")
    table = Table(show_lines=True)
    for column in ("#", "prompt (end)", "output", "extracted", "gold", "metrics", "status"):
        table.add_column(column, overflow="fold")
    for s in samples:
        output = s["output"] if s["output"] is not None else _fmt_logprobs(s["details"].get("logprobs"))
        table.add_row(str(s["sample_index"]), escape(s["prompt"][-80:]), escape(str(output)),
                      escape(str(s["extracted"])), escape(str(s["reference"])),
                      " ".join(f"{k}={_fmt(v, 3)}" for k, v in s["metrics"].items()), s["status"])
    console.print(table)


def _fmt_logprobs(values: list[float] | None) -> str:
    return "" if not values else "logprobs " + ", ".join(f"{v:.2f}" for v in values)


@app.command()
def score(run_id: str, store: StoreOpt = None, format: Format = "table") -> None:
    """Recompute a run's metrics from its stored records; no model is called."""
    from hyouka.engine.rescore import rescore
    from hyouka.store.store import RunNotFoundError, Store

    try:
        aggregates = rescore(Store(store), run_id)
    except (RunNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    if format == "json":
        print(json.dumps(aggregates, ensure_ascii=False, default=str))
        return
    table = Table(title=f"rescored {run_id}")
    for column in ("metric", "value", "95% CI", "n"):
        table.add_column(column)
    for name, agg in aggregates.items():
        table.add_row(name, _fmt(agg["value"]), f"[{_fmt(agg['ci_low'], 3)}, {_fmt(agg['ci_high'], 3)}]",
                      f"{agg['n_scored']}/{agg['n_total']}")
    console.print(table)


@app.command()
def leaderboard(
    suite: Annotated[
        str, typer.Option(help="suite of tasks and headline metrics; 'none' for every task and judge score")
    ] = "jglue",
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Models x tasks with the suite average, from the latest completed runs."""
    from hyouka.report.leaderboard import build_leaderboard
    from hyouka.store.store import Store

    if suite == "none":
        board = build_leaderboard(Store(store), suite=None, kinds=("benchmark", "judge"))
    else:
        board = build_leaderboard(Store(store), suite=suite)
    if format == "json":
        print(json.dumps(board.to_records(), ensure_ascii=False, default=str))
        return
    if format in ("markdown", "md", "csv", "html"):  # report formats, with cost and latency (hyouka.report.tables)
        _print_board(board, Store(store), format)
        return
    table = Table(title=f"leaderboard ({board.suite or 'all tasks'})")
    table.add_column("model")
    table.add_column("setting")
    for task in board.tasks:
        table.add_column(task, justify="right")
    table.add_column("average", justify="right")
    for row in board.rows:
        cells = []
        for task in board.tasks:
            cell = row.cells.get(task)
            cells.append("—" if cell is None else f"{_fmt(cell.value, 3)} ({cell.metric})")
        avg = f"{_fmt(row.average, 3)} ({row.n_tasks_averaged}/{len(board.tasks)})"
        table.add_row(escape(row.model), row.setting, *cells, avg)
    console.print(table)


@app.command("tasks")
def list_tasks() -> None:
    """List the built-in tasks, suites and prompt families."""
    from hyouka.tasks.prompts import PROMPT_FAMILIES
    from hyouka.tasks.registry import builtin_suites, builtin_task_names, load_task

    table = Table(title="tasks")
    for column in ("task", "version", "modes", "metrics", "description"):
        table.add_column(column)
    for name in builtin_task_names():
        spec = load_task(name)
        table.add_row(name, spec.version, ", ".join(spec.modes), ", ".join(m.metric for m in spec.metric_list),
                      spec.description)
    console.print(table)
    for suite in builtin_suites().values():
        console.print(f"suite {suite.suite}: " + ", ".join(f"{e.task} ({e.metric})" for e in suite.tasks))
    for family in PROMPT_FAMILIES.values():
        console.print(f"prompt family {family.name}: {family.description}")


# -- accounting, reports, comparison and exports (hyouka.engine.budget, hyouka.report) ---------------------


def _dry_run(model: str | None, resume: str | None, output: Path | None, **kwargs: Any) -> None:
    """Print what ``run`` would call and cost."""
    from hyouka.api import estimate

    if resume or not model:
        _fail("--dry-run needs --model (it estimates a new run, not --resume)")
        return
    try:
        plan = estimate(model, kwargs.pop("tasks"), **kwargs)
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        _fail(str(exc))
        return
    price = plan.price
    table = Table(title=f"dry run: {escape(plan.model)}")
    for column in ("task", "mode", "docs", "done", "requests", "cached", "calls", "prompt tokens",
                   "max completion tokens", "cost ≤"):
        table.add_column(column, justify="left" if column in ("task", "mode") else "right")
    for t in plan.tasks:
        table.add_row(t.task, t.mode, str(t.n_docs), str(t.n_done), str(t.n_requests), str(t.n_cached + t.n_duplicates),
                      str(t.n_calls), f"{t.prompt_tokens:,}", f"{t.max_completion_tokens:,}", _usd(t.cost_usd))
    table.add_row("total", "", "", "", "", "", str(plan.n_calls), f"{plan.prompt_tokens:,}",
                  f"{plan.max_completion_tokens:,}", _usd(plan.cost_usd))
    console.print(table)
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


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _print_accounting(result: Any) -> None:
    for r in result.runs:
        acc = r.extra.get("accounting") or {}
        if not acc:
            continue
        lat = acc.get("latency_s") or {}
        console.print(
            f"{r.task}: {acc['n_calls']} calls ({acc['n_cached_calls']} cached), "
            f"{acc['prompt_tokens']:,} + {acc['completion_tokens']:,} tokens, cost {_usd(acc.get('cost_usd'))} "
            f"(spent {_usd(acc.get('spent_usd'))}), latency p50 {_fmt(lat.get('p50'), 3)} s / p95 "
            f"{_fmt(lat.get('p95'), 3)} s"
        )


def _print_board(board: Any, the_store: Any, fmt: str) -> None:
    from hyouka.report.summary import board_stats
    from hyouka.report.tables import render
    from hyouka.report.views import load_views

    ids = list(dict.fromkeys(i for row in board.rows for i in row.run_ids))
    stats = board_stats(board, load_views(the_store, ids)) if ids else []
    sys.stdout.write(render(board, fmt, stats))


def _export_to_mlflow(store: str | None, run_ids: list[str], prices: Path | None,
                      tracking_uri: str | None = None, experiment: str = "hyouka") -> None:
    from hyouka.report.export_mlflow import export_mlflow
    from hyouka.store.store import Store

    try:
        logged = export_mlflow(Store(store), run_ids, tracking_uri=tracking_uri, experiment=experiment,
                               prices=str(prices) if prices else None)
    except ImportError as exc:
        _fail(str(exc))
        return
    for run_id, mlflow_id in logged.items():
        console.print(f"run {run_id} → MLflow run {mlflow_id}")


RunIds = Annotated[list[str] | None, typer.Argument(help="run ids or unique prefixes (default: all completed)")]
PricesOpt = Annotated[Path | None, typer.Option("--prices", help="price table YAML, before the defaults")]


@app.command()
def report(
    runs: RunIds = None,
    output: Annotated[Path, typer.Option("--output", "-o", help=".html, .md, .csv or .json")] = Path("report.html"),
    suite: Annotated[str | None, typer.Option(help="suite name or file: its tasks, weights and metrics")] = None,
    prices: PricesOpt = None,
    charts_dir: Annotated[Path | None, typer.Option("--charts-dir", help="also write each chart here")] = None,
    chart_format: Annotated[str, typer.Option("--chart-format", help="png or svg")] = "png",
    max_examples: Annotated[int, typer.Option("--max-examples", help="examples shown per run")] = 200,
    title: str = "hyouka evaluation report",
    store: StoreOpt = None,
) -> None:
    """One self-contained report: leaderboard, charts, examples with scores, and run metadata."""
    from hyouka.report.build import build_report
    from hyouka.report.charts import MissingExtraError
    from hyouka.report.html import write_html
    from hyouka.report.leaderboard import load_suite
    from hyouka.report.tables import render
    from hyouka.store.store import RunNotFoundError, Store

    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".csv", ".json"):
        _fail(f"unknown report format {output.suffix!r}: use .html, .md, .csv or .json")
    wants_charts = suffix in (".html", ".htm") or charts_dir is not None
    try:
        built = build_report(Store(store), runs or None, suite=load_suite(suite),
                             prices=str(prices) if prices else None, charts=wants_charts, title=title)
    except (RunNotFoundError, MissingExtraError, ValueError, OSError) as exc:
        _fail(str(exc))
        return
    if suffix in (".html", ".htm"):
        write_html(built, output, max_examples=max_examples)
    else:
        fmt = {".md": "markdown", ".csv": "csv", ".json": "json"}[suffix]
        output.write_text(render(built.board, fmt, built.stats), encoding="utf-8")
    if charts_dir is not None:
        charts_dir.mkdir(parents=True, exist_ok=True)
        for chart in built.charts:
            (charts_dir / f"{chart.key}.{chart_format}").write_bytes(chart.to_bytes(chart_format))
    console.print(f"wrote {output} ({len(built.views)} runs, {len(built.board.rows)} rows, {len(built.charts)} charts)")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="baseline run id")],
    run_b: Annotated[str, typer.Argument(help="run id compared with it")],
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="only these metrics")] = None,
    show: Annotated[int, typer.Option(help="changed examples to show")] = 10,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples")] = 1000,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Paired differences (B − A) with 95% intervals, and the examples that changed."""
    from hyouka.report.compare import compare_runs
    from hyouka.store.store import RunNotFoundError, Store

    try:
        result = compare_runs(Store(store), run_a, run_b, metrics=metric or None, n_resamples=resamples,
                              max_changed=show)
    except (RunNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    if format == "json":
        print(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
        return
    a, b = result.run_a, result.run_b
    unpaired = f", {result.only_a} only in A, {result.only_b} only in B" if result.only_a or result.only_b else ""
    console.print(f"A = {a['id']} ({escape(a['model'])}), B = {b['id']} ({escape(b['model'])}) on {a['task']}: "
                  f"{result.n_pairs} pairs by {result.paired_by}{unpaired}")
    table = Table(caption="+ / − / =: pairs where B is better / worse / the same; *: the interval excludes 0")
    for column in ("metric", "A", "B", "B − A", "95% CI", "+", "−", "=", ""):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=column != "95% CI")
    for m in result.metrics:
        ci = f"[{_fmt(m.ci_low, 3)}, {_fmt(m.ci_high, 3)}]" if m.ci_low is not None else (m.note or "")
        counts = [str(x) if x is not None else "" for x in (m.n_better, m.n_worse, m.n_same)]
        diff = f"{m.diff:+.3f}" if m.diff is not None else "—"
        table.add_row(m.metric + ("" if m.higher_is_better else " ↓"), _fmt(m.value_a, 3), _fmt(m.value_b, 3), diff,
                      escape(ci), *counts, "*" if m.significant else "")
    console.print(table)
    if result.changed:
        console.print(f"{result.n_changed} examples changed; showing {len(result.changed)}:")
    for c in result.changed:
        delta = f", {result.primary} {c.delta:+.3f}" if c.delta is not None else ""
        console.print(f"[bold]#{escape(c.key)}[/] gold {escape(str(c.reference))}: A {escape(repr(c.prediction_a))} "
                      f"({c.status_a}) → B {escape(repr(c.prediction_b))} ({c.status_b}){delta}")
        if c.output_a is not None or c.output_b is not None:
            console.print(f"   A: {escape((c.output_a or '')[:200])!s}\n   B: {escape((c.output_b or '')[:200])!s}",
                          highlight=False)


export_app = typer.Typer(help="Log stored runs to an experiment tracker.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("mlflow")
def export_mlflow_cmd(
    runs: RunIds = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="default: MLFLOW_TRACKING_URI")] = None,
    experiment: str = "hyouka",
    prices: PricesOpt = None,
    store: StoreOpt = None,
) -> None:
    """Params, metrics (<metric>/v1/mean), eval_results_table.json and charts, one MLflow run per hyouka run."""
    from hyouka.store.store import RunNotFoundError

    try:
        _export_to_mlflow(store, runs or None, prices, tracking_uri=tracking_uri, experiment=experiment)  # type: ignore[arg-type]
    except RunNotFoundError as exc:
        _fail(str(exc))


@export_app.command("wandb")
def export_wandb_cmd(
    runs: RunIds = None,
    project: str = "hyouka",
    mode: Annotated[str, typer.Option(help="offline (default) or online")] = "offline",
    dir: Annotated[Path | None, typer.Option("--dir", help="where W&B writes its files")] = None,
    prices: PricesOpt = None,
    store: StoreOpt = None,
) -> None:
    """Config, summary metrics, the per-row table and the charts, one W&B run per hyouka run."""
    from hyouka.report.export_wandb import export_wandb
    from hyouka.store.store import RunNotFoundError, Store

    try:
        logged = export_wandb(Store(store), runs or None, project=project, mode=mode, dir=dir,
                              prices=str(prices) if prices else None)
    except (ImportError, RunNotFoundError) as exc:
        _fail(str(exc))
        return
    for run_id, path in logged.items():
        console.print(f"{run_id} → {path}")


# -- judge evaluations: `hyouka eval`, `hyouka pairwise` (hyouka.evaluation, hyouka.judge) --------------------

_OPENAI_OPTIONS = ("base_url", "api_key_env", "concurrency")
_HF_OPTIONS = ("dtype", "device", "batch_size")


def _judge_options(base_url: str | None) -> dict[str, Any]:
    return {"base_url": base_url} if base_url else {}


def _options_for(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that ``spec``'s backend takes (openai options for openai:, hf options for hf:)."""
    prefix = spec.partition(":")[0]
    wanted = _OPENAI_OPTIONS if prefix == "openai" else _HF_OPTIONS if prefix == "hf" else ()
    return {k: v for k, v in options.items() if k in wanted and v is not None}


def _write_rows(path: Path, frames: list[Any]) -> None:
    import pandas as pd

    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_json(path, orient="records", lines=True, force_ascii=False)


def _print_metrics(results: list[Any]) -> None:
    names = list(dict.fromkeys(name for r in results for name in r.aggregates))
    table = Table(title="evaluation")
    table.add_column("metric")
    for r in results:
        table.add_column(escape(r.model), justify="right")
    for name in names:
        cells = []
        for r in results:
            agg = r.aggregates.get(name)
            cells.append("—" if agg is None else f"{_fmt(agg['value'], 3)} ({agg['n_scored']}/{agg['n_total']})")
        table.add_row(name, *cells)
    table.add_row("run", *[r.run_id for r in results])
    console.print(table)
    for r in results:
        for name, agg in r.aggregates.items():
            if agg["value"] is None and agg.get("note"):
                err.print(f"[yellow]{escape(r.model)} {name}:[/] {escape(agg['note'])}")


@app.command("eval")
def eval_cmd(
    data: Annotated[Path, typer.Argument(help="CSV, JSON lines, JSON or Parquet file")],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="model to answer (repeatable)")] = None,
    judge: JudgeOpt = None,
    metrics: Annotated[str | None, typer.Option(help="comma-separated: exact_match,char_f1,rouge_l,"
                                                     "answer_correctness,… or rubric .yaml files")] = None,
    predictions_column: Annotated[str | None, typer.Option("--predictions-column", help="existing answers")] = None,
    targets_column: Annotated[str | None, typer.Option("--targets-column", help="ground truth")] = None,
    inputs_column: Annotated[str | None, typer.Option("--inputs-column", help="question or prompt")] = None,
    context_column: Annotated[str | None, typer.Option("--context-column")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column")] = None,
    language: Annotated[str, typer.Option(help="rubric language: ja or en")] = "ja",
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 256,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N rows")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="endpoint of openai: models")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key")] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    dtype: Annotated[str | None, typer.Option(help="hf: auto, float32, bfloat16, float16")] = None,
    device: Annotated[str | None, typer.Option(help="hf: auto, cpu, cuda")] = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the results as JSON")] = None,
    rows: Annotated[Path | None, typer.Option("--rows", help="write the per-row table (.csv or .jsonl)")] = None,
    format: Format = "table",
) -> None:
    """Evaluate models' answers (or existing predictions) on your own data, with heuristic and judge metrics."""
    from hyouka.evaluation import evaluate

    if not model and predictions_column is None:
        _fail("give --model (repeatable) or --predictions-column with the answers to judge")
    options = {"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency, "dtype": dtype,
               "device": device}
    results = []
    try:
        with _progress() as progress:
            for spec in model or [None]:
                results.append(evaluate(
                    spec, data, targets=targets_column, predictions=predictions_column, inputs=inputs_column,
                    context=context_column, id_column=id_column, metrics=metrics, judge=judge, language=language,
                    max_tokens=max_tokens, system_prompt=system_prompt, limit=limit, store=store,
                    cache=not no_cache, progress=progress(spec or str(data.name)),
                    judge_options=_judge_options(judge_base_url), **(_options_for(spec, options) if spec else {}),
                ))
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished rows are stored; run the same command to resume")
        raise typer.Exit(code=130) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        _fail(str(exc))
        return
    if format == "json":
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, default=str))
    else:
        _print_metrics(results)
    if output:
        output.write_text(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2, default=str),
                          encoding="utf-8")
    if rows:
        _write_rows(rows, [r.table.assign(model=r.model) for r in results])


@app.command("pairwise")
def pairwise_cmd(
    models: Annotated[str, typer.Option("--models", help="A,B: two model specs")],
    data: Annotated[Path, typer.Option("--data", help="an MT-Bench folder (question.jsonl) or a data file")],
    judge: Annotated[str, typer.Option("--judge", help="judge model: openai:gpt-4o…")],
    predictions: Annotated[str | None, typer.Option(help="A,B: prediction columns instead of models")] = None,
    inputs_column: Annotated[str | None, typer.Option("--inputs-column")] = None,
    targets_column: Annotated[str | None, typer.Option("--targets-column", help="reference answers")] = None,
    turns: Annotated[str, typer.Option(help="MT-Bench turns to compare")] = "1,2",
    language: Annotated[str, typer.Option(help="judge prompt language: ja or en")] = "ja",
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N questions or rows")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="endpoint of openai: models")] = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Compare two models with a judge; each item is judged in both orders, and flips count as ties."""
    specs = [m.strip() for m in models.split(",")]
    columns = [c.strip() or None for c in predictions.split(",")] if predictions else [None, None]
    if len(specs) != 2 or len(columns) != 2:
        _fail("--models (and --predictions) take exactly two comma-separated values")
    try:
        with _progress() as progress:
            result = _pairwise(specs, columns, data, judge, inputs_column, targets_column, turns, language,
                               max_tokens, limit, base_url, judge_base_url, not no_cache, store, progress("pairwise"))
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished items are stored; run the same command to resume")
        raise typer.Exit(code=130) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        _fail(str(exc))
        return
    if format == "json":
        print(json.dumps(result, ensure_ascii=False, default=str))
        return
    rates = result["win_rates"]
    table = Table(title=f"A = {escape(specs[0])}, B = {escape(specs[1])}, judge {escape(judge)}")
    for column in ("A wins", "B wins", "ties", "inconsistent", "win rate A", "win rate B", "judged", "run"):
        table.add_column(column, justify="right")
    table.add_row(str(rates["wins_a"]), str(rates["wins_b"]), str(rates["ties"]), str(rates["inconsistent"]),
                  _fmt(rates["win_rate_a"], 3), _fmt(rates["win_rate_b"], 3),
                  f"{rates['n_judged']}/{rates['n_total']}", result["run_id"])
    console.print(table)
    console.print("win rates count a tie as half a win; a verdict that flips with the order is a tie (inconsistent)")


def _pairwise(specs: list[str], columns: list[str | None], data: Path, judge: str, inputs: str | None,
              targets: str | None, turns: str, language: str, max_tokens: int | None, limit: int | None,
              base_url: str | None, judge_base_url: str | None, cache: bool, store: str | None,
              progress: Callable[[int, int], None]) -> dict[str, Any]:
    """MT-Bench pairwise when ``data`` is an MT-Bench folder, else pairwise on the rows of a data file."""
    from hyouka.evaluation.backends import open_cache, resolve_model
    from hyouka.judge.tasks import mt_bench_data_dir
    from hyouka.store.store import Store

    options = {"base_url": base_url}
    root = mt_bench_data_dir(data, None) if data.is_dir() else None
    if root is None:
        from hyouka.evaluation import pairwise

        models = [None if c else s for s, c in zip(specs, columns, strict=True)]
        return pairwise(models, data, judge=judge, predictions=columns, inputs=inputs, targets=targets,
                        language=language, max_tokens=max_tokens or 256, limit=limit, store=store, cache=cache,
                        progress=progress, judge_options=_judge_options(judge_base_url),
                        **_options_for(specs[0], options)).to_dict()
    from hyouka.judge.mt_bench.pairwise import run_pairwise

    a, b = (resolve_model(s, _options_for(s, options)) for s in specs)
    result = run_pairwise(
        a, specs[0], b, specs[1], resolve_model(judge, _judge_options(judge_base_url)), judge,
        store=Store(store), cache=open_cache(cache), data_dir=root, turns=[int(t) for t in turns.split(",")],
        limit=limit, language=language, progress=progress,
        **({"max_tokens": max_tokens} if max_tokens else {}),
    )
    return {"run_id": result.run_id, "aggregates": result.aggregates, **result.extra}


@app.command("agreement")
def agreement_cmd(
    judge_a: Annotated[str, typer.Argument(help="a judge run id, or a FastChat judgment .jsonl file")],
    judge_b: Annotated[str, typer.Argument(help="another judge run id or judgment file (the reference)")],
    data_dir: Annotated[Path | None, typer.Option(help="MT-Bench folder, for categories of judgment files")] = None,
    model: Annotated[str | None, typer.Option(help="only the judgments of this model")] = None,
    metric: Annotated[str, typer.Option(help="the per-row score compared")] = "score",
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """How far two judges agree: correlations, exact and within-one agreement, per category."""
    from hyouka.judge.agreement import compare_judges
    from hyouka.store.store import RunNotFoundError, Store

    try:
        report = compare_judges(judge_a, judge_b, store=Store(store), metric=metric, data_dir=data_dir, model=model)
    except (RunNotFoundError, ValueError, OSError) as exc:
        _fail(str(exc))
        return
    if format == "json":
        print(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
        return
    table = Table(title=f"agreement of {escape(judge_a)} with {escape(judge_b)}")
    for column in ("items", "n", "pearson", "spearman", "kendall", "exact", "within 1", "mean A", "mean B"):
        table.add_column(column, justify="right")
    for label, r in [("all", report), *report.per_category.items()]:
        table.add_row(label, str(r.n), _fmt(r.pearson, 3), _fmt(r.spearman, 3), _fmt(r.kendall, 3), _fmt(r.exact, 3),
                      _fmt(r.within_one, 3), _fmt(r.mean_a, 2), _fmt(r.mean_b, 2))
    console.print(table)
    if report.note:
        err.print(f"[yellow]note:[/] {escape(report.note)}")




def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
