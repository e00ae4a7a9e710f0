"""The prompting ladder: ``hyouka ladder``."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import (
    Format,
    JudgeBaseUrlOpt,
    JudgeMaxTokensOpt,
    JudgeOpt,
    StoreOpt,
    api_error,
    console,
    emit,
    err,
    escape,
    fail,
    fmt,
    judge_backend_options,
    parse_data_files,
    progress_bars,
)
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS

_FLAGS = {"judge": "--judge", "model": "--model", "targets": "--targets-column", "inputs": "--inputs-column"}


def _cost(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _delta(value: float | None, money: bool = False) -> str:
    if value is None:
        return ""
    return f"{'+' if value >= 0 else '−'}${abs(value):.4f}" if money else f"{value:+.3f}"


def _print_cells(result: Any) -> None:
    columns = ("model", "rung", "score", "95% CI", "n", "$/1k q", "judge $/1k", "p50 s", "p95 s", "Δscore",
               "Δ$/1k", "", "calls", "run")
    title = f"ladder: {clean(result.task)} · {result.metric} · {result.goal.situation}"
    table = TextTable(columns, title=title, right=("score", "n", "$/1k q", "judge $/1k", "p50 s", "p95 s", "Δscore",
                                                   "Δ$/1k", "calls"))
    for c in result.cells:
        if not c.ran:
            table.add_row(clean(c.model), clean(c.rung), "", "", "", "", "", "", "", "", "", "", "", c.status)
            continue
        ci = f"[{fmt(c.ci_low, 3)}, {fmt(c.ci_high, 3)}]" if c.ci_low is not None else ""
        marks = ("◆" if c.on_frontier else "") + ("✓" if c.meets_goal else "")
        table.add_row(clean(c.model), clean(c.rung), fmt(c.score, 3), ci, f"{c.n_scored}/{c.n_total}",
                      _cost(c.cost_per_1k), _cost(c.judge_cost_per_1k), fmt(c.latency_p50, 3), fmt(c.latency_p95, 3),
                      _delta(c.delta_score), _delta(c.delta_cost, money=True), marks, str(c.model_calls),
                      c.run_id or "")
    table.print()
    console.print("◆ on the Pareto frontier (cost per 1,000 questions against score)"
                  + ("; ✓ meets the goal" if result.goal.target is not None or result.goal.budget is not None else "")
                  + "; calls: made by this command (0: from the store or the cache)")


def _per_1k(estimate: dict[str, Any]) -> float | None:
    """A dry run's upper cost per 1,000 questions (what --budget is compared with)."""
    cost, n = estimate.get("cost_usd"), estimate.get("n_questions") or 0
    return None if cost is None or not n else cost / n * 1000


def _print_estimate(result: Any) -> None:
    columns = ("model", "rung", "questions", "calls", "cached", "prompt tokens", "max completion tokens", "cost ≤",
               "≤ $/1k q", "judge calls", "judge cost ≤")
    table = TextTable(columns, title=f"dry run: ladder on {clean(result.task)}", right=columns[2:])
    for c in result.cells:
        e = c.estimate or {}
        table.add_row(clean(c.model), clean(c.rung), str(e.get("n_questions", "")), str(e.get("n_calls", "")),
                      str(e.get("n_cached", "")), f"{e.get('prompt_tokens', 0):,}",
                      f"{e.get('max_completion_tokens', 0):,}", _cost(e.get("cost_usd")), _cost(_per_1k(e)),
                      str(e.get("judge_calls", 0)), _cost(e.get("judge_cost_usd")))
    table.print()


@app.command("ladder")
def ladder_cmd(
    tasks: Annotated[str, typer.Option(
        "--tasks", "-t", help="one benchmark task or task file (jsquad), or your data: qa.jsonl, rag:qa.jsonl")],
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="a model climbing the rungs (repeatable): openai:gpt-4o-mini, databricks:dbrx, hf:…")
    ] = None,
    rungs: Annotated[str, typer.Option(
        "--rungs", help="comma-separated rungs (zero-shot, few-shot:N, rag:K, joined by +: few-shot:3+rag:4) "
                        "or a YAML file of rungs")] = "zero-shot,few-shot:3",
    metric: Annotated[str | None, typer.Option(
        "--metric", help="the score to climb on (default: the task's headline metric): char_f1, answer_correctness…")
    ] = None,
    target: Annotated[float | None, typer.Option(
        "--target", help="good enough: the cheapest cell whose 95% interval reaches this score")] = None,
    budget: Annotated[float | None, typer.Option(
        "--budget", min=0, help="fixed budget: the best score costing at most this many USD per 1,000 questions")
    ] = None,
    stop_at_goal: Annotated[bool, typer.Option(
        "--stop-at-goal", help="climb each model's rungs in order and stop at the first that meets the goal")] = False,
    judge: JudgeOpt = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_max_tokens: JudgeMaxTokensOpt = None,
    index: Annotated[str | None, typer.Option("--index", help="the index rag:K rungs retrieve from")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="evaluate only the first N questions")] = None,
    seed: Annotated[int, typer.Option(help="picks the few-shot examples and seeds the bootstrap")] = 0,
    mode: Annotated[str, typer.Option(help="benchmark tasks: auto, loglikelihood or generate")] = "auto",
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="most tokens per answer")] = None,
    chat: Annotated[bool, typer.Option(help="benchmark tasks: send prompts as chat messages")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="JGLUE datasets/ folder (or HYOUKA_JGLUE_DIR)")] = None,
    data_file: Annotated[list[str], typer.Option(
        help="a benchmark task's data file, TASK=PATH (repeatable)")] = [],  # noqa: B006
    inputs_column: Annotated[str | None, typer.Option("--inputs-column", help="your data: the question")] = None,
    targets_column: Annotated[str | None, typer.Option("--targets-column", help="your data: the ground truth")] = None,
    language: Annotated[str, typer.Option(help="judge rubric language: ja or en")] = "ja",
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint of the models")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key")] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="price every cell of the ladder (calls, tokens, upper cost); no call")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="write an HTML report: the ladder's table, recommendation and charts, then its runs")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the result as JSON")] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="price table YAML, before the defaults")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Climb the prompting ladder per model and recommend the (model, rung) for the goal.

    Every cell is a stored run: running the command again, or with one more rung, pays only for what is new.
    """
    from hyouka.engine.budget import BudgetExceededError
    from hyouka.evaluation.ladder import ladder

    options = {k: v for k, v in {"base_url": base_url, "api_key_env": api_key_env,
                                 "concurrency": concurrency}.items() if v is not None}
    kwargs: dict[str, Any] = {
        "rungs": rungs, "metric": metric, "target": target, "budget": budget, "judge": judge,
        "judge_options": judge_backend_options(judge_base_url), "judge_max_tokens": judge_max_tokens,
        "index": index, "limit": limit, "seed": seed, "mode": mode, "max_tokens": max_tokens, "chat": chat,
        "data_dir": data_dir, "data_files": parse_data_files(data_file), "language": language,
        "columns": {"inputs": inputs_column, "targets": targets_column}, "store": store, "cache": not no_cache,
        "prices": prices, **options,
    }
    try:
        if dry_run:
            result = ladder(model or [], tasks, dry_run=True, **kwargs)
        else:
            with progress_bars() as progress:
                result = ladder(model or [], tasks, stop_at_goal=stop_at_goal, progress=progress, **kwargs)
    except BudgetExceededError as exc:
        err.print(f"[yellow]budget:[/] {escape(str(exc))}")
        raise typer.Exit(code=3) from None
    except KeyboardInterrupt as exc:
        err.print("[yellow]interrupted:[/] finished cells and samples are stored; run the same command to resume")
        raise typer.Exit(code=128 + getattr(exc, "signum", 2)) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        fail(api_error(exc, _FLAGS))
        return
    if output:
        output.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if report and not dry_run:
        _write_report(result, report, store, prices)
    if format != "table":
        emit(result.to_dict(), format, [c.to_dict() for c in result.cells])
        return
    if dry_run:
        _print_estimate(result)
    else:
        _print_cells(result)
        console.print(f"[bold]recommendation ({escape(result.goal.situation)}):[/] "
                      f"{escape(result.recommendation.reason)}", soft_wrap=True)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if result.ladder_id:
        err.print(f"ladder {result.ladder_id} stored: `hyouka serve` shows it at /ladders/{result.ladder_id}")


def _write_report(result: Any, path: Path, store: str | None, prices: Path | None) -> None:
    from hyouka.report.build import build_report
    from hyouka.report.charts import MissingExtraError
    from hyouka.report.html import write_html
    from hyouka.store.store import Store

    runs = [c.run_id for c in result.cells if c.run_id]
    try:
        built = build_report(Store(store), runs, suite="none", prices=str(prices) if prices else None, ladder=result,
                             title=f"hyouka ladder: {result.task}")
    except (MissingExtraError, ValueError, OSError) as exc:
        fail(str(exc))
        return
    write_html(built, path)
    err.print(f"report: {escape(str(path))}")
