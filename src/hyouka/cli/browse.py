"""The read-only commands: runs, show, leaderboard, tasks, in plain click so that they answer at once.

Typer builds a pydantic adapter for every option it parses (importing pydantic alone costs
these commands more than their work), so these few are click commands; they run under the Typer
root like any other (see :mod:`hyouka.cli._lazy`). They read a SQLite store with the standard
library (:mod:`hyouka.store.reader`), the built-in tasks from their index
(:mod:`hyouka.tasks.catalog`), and print with :mod:`hyouka.cli.text_table`: no pydantic,
SQLAlchemy, Rich (unless a note is printed), NumPy or torch on their way.
"""

from __future__ import annotations

import sys
from typing import Any, get_args

import click

from hyouka.cli._output import (
    FORMAT_HELP,
    STORE_HELP,
    BoardFormat,
    OutputFormat,
    emit,
    err,
    escape,
    fmt,
    print_error,
)
from hyouka.cli.text_table import TextTable, clean

app = click.Group()  # this module's commands, registered by name in hyouka.cli.COMMANDS
_WIDE = {"max_content_width": 120}  # help as wide as the terminal, up to 120 columns (click's default: 80)

_store = click.option("--store", help=STORE_HELP)
_format = click.option("--format", type=click.Choice(get_args(OutputFormat)), default="table", show_default=True,
                       help=FORMAT_HELP)


def fail(message: str) -> None:
    print_error(message)
    raise click.exceptions.Exit(2)


@app.command(context_settings=_WIDE)
@_store
@_format
def runs(store: str | None, format: str) -> None:
    """List the runs in the store, oldest first; a running run whose owner is gone says so."""
    from hyouka.store.ownership import display_status
    from hyouka.store.reader import open_store

    rows = open_store(store).list_runs(omit=("config", "model_identity", "versions"))
    for row in rows:
        row["owner_gone"] = display_status(row) == "running (owner gone)"
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


@app.command(context_settings=_WIDE)
@click.argument("run_id", help="run id or unique prefix (`hyouka runs` lists them)")
@_store
@_format
@click.option("--limit", type=click.IntRange(min=1), help="show at most N samples")
def show(run_id: str, store: str | None, format: str, limit: int | None) -> None:
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


@app.command(context_settings=_WIDE)
@click.option("--suite", default="auto", show_default=True,
              help="auto: a table per suite, MT-Bench, eval runs and other tasks; a suite name or file: its table; "
                   "none: every task and judge score, no average")
@_store
@click.option("--format", type=click.Choice(get_args(BoardFormat)), default="table", show_default=True,
              help="table, json (one document), jsonl (one row per line), or a report table: markdown, csv, html "
                   "(with cost and latency)")
def leaderboard(suite: str, store: str | None, format: str) -> None:
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


def _print_boards(boards: list[Any], the_store: Any, fmt: str) -> None:
    from hyouka.report.summary import board_stats
    from hyouka.report.tables import render_boards
    from hyouka.report.views import load_views

    ids = list(dict.fromkeys(i for board in boards for row in board.rows for i in row.run_ids))
    views = load_views(the_store, ids, samples=False) if ids else []
    sys.stdout.write(render_boards(boards, fmt, [board_stats(b, views) for b in boards]) + "\n")


@app.command("tasks", context_settings=_WIDE)
@_format
def list_tasks(format: str) -> None:
    """List the built-in tasks, suites and prompt families."""
    from hyouka.tasks.catalog import builtin_catalog

    catalog = builtin_catalog()
    tasks = [{"task": t.task, "version": t.version, "modes": list(t.modes), "metrics": list(t.metrics),
              "description": t.description} for t in catalog.tasks.values()]
    suites = [{"suite": s.suite, "tasks": [{"task": e.task, "metric": e.metric} for e in s.tasks]}
              for s in catalog.suites.values()]
    families = [{"prompt_family": name, "description": description} for name, description in catalog.families.items()]
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
