"""Report, comparison and export commands."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from hyouka.cli._app import (
    Format,
    StoreOpt,
    console,
    emit,
    export_to_mlflow,
    fail,
    fmt,
)
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS

RunIds = Annotated[list[str] | None, typer.Argument(help="run ids or unique prefixes (default: all completed)")]
PricesOpt = Annotated[Path | None, typer.Option("--prices", help="price table YAML, before the defaults")]


@app.command()
def report(
    runs: RunIds = None,
    output: Annotated[Path, typer.Option("--output", "-o", help=".html, .md, .csv or .json")] = Path("report.html"),
    suite: Annotated[str | None, typer.Option(help="suite name or file: its table alone; none: one table, "
                                                   "no average (default: as hyouka leaderboard)")] = None,
    prices: PricesOpt = None,
    charts_dir: Annotated[Path | None, typer.Option("--charts-dir", help="also write each chart here")] = None,
    chart_format: Annotated[Literal["png", "svg"], typer.Option(
        "--chart-format", help="image format of the files in --charts-dir")] = "png",
    max_examples: Annotated[int, typer.Option("--max-examples", help="examples shown per run")] = 200,
    title: Annotated[str, typer.Option(help="the report's title")] = "hyouka evaluation report",
    store: StoreOpt = None,
) -> None:
    """One self-contained report: leaderboard, charts, examples with scores, and run metadata."""
    from hyouka.report.build import build_report
    from hyouka.report.charts import MissingExtraError
    from hyouka.report.html import write_html
    from hyouka.report.tables import render_boards
    from hyouka.store.store import RunNotFoundError, Store

    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".csv", ".json"):
        fail(f"unknown report format {output.suffix!r}: use .html, .md, .csv or .json")
    wants_charts = suffix in (".html", ".htm") or charts_dir is not None
    try:
        built = build_report(Store(store), runs or None, suite=suite,
                             prices=str(prices) if prices else None, charts=wants_charts, title=title)
    except (RunNotFoundError, MissingExtraError, ValueError, OSError) as exc:
        fail(str(exc))
        return
    if suffix in (".html", ".htm"):
        write_html(built, output, max_examples=max_examples)
    else:
        fmt = {".md": "markdown", ".csv": "csv", ".json": "json"}[suffix]
        output.write_text(render_boards(built.boards, fmt, built.all_stats), encoding="utf-8")
    if charts_dir is not None:
        charts_dir.mkdir(parents=True, exist_ok=True)
        for chart in built.charts:
            (charts_dir / f"{chart.key}.{chart_format}").write_bytes(chart.to_bytes(chart_format))
    console.print(f"wrote {output} ({len(built.views)} runs, {len(built.board.rows)} rows, {len(built.charts)} charts)")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="baseline run id")],
    run_b: Annotated[str, typer.Argument(help="run id compared with it")],
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="compare only this metric (repeatable)")] = None,
    show: Annotated[int, typer.Option(help="changed examples to print, largest change first", min=0)] = 10,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples for the intervals (0: none)", min=0)] = 1000,
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
        fail(str(exc))
        return
    if format != "table":
        emit(result.to_dict(), format)
        return
    a, b = result.run_a, result.run_b
    unpaired = f", {result.only_a} only in A, {result.only_b} only in B" if result.only_a or result.only_b else ""
    out = [f"A = {a['id']} ({clean(a['model'])}), B = {b['id']} ({clean(b['model'])}) on {a['task']}: "
           f"{result.n_pairs} pairs by {result.paired_by}{unpaired}"]
    table = TextTable(("metric", "A", "B", "B − A", "95% CI", "+", "−", "=", ""),
                      right=("A", "B", "B − A", "95% CI", "+", "−", "="))
    for m in result.metrics:
        ci = f"[{fmt(m.ci_low, 3)}, {fmt(m.ci_high, 3)}]" if m.ci_low is not None else (m.note or "")
        counts = [str(x) if x is not None else "" for x in (m.n_better, m.n_worse, m.n_same)]
        diff = f"{m.diff:+.3f}" if m.diff is not None else "—"
        table.add_row(m.metric + ("" if m.higher_is_better else " ↓"), fmt(m.value_a, 3), fmt(m.value_b, 3), diff,
                      ci, *counts, "*" if m.significant else "")
    out += table.lines()
    out.append("+ / − / =: pairs where B is better / worse / the same; *: the interval excludes 0")
    if result.n_changed:
        on = f" on {result.primary}" if result.primary else ""
        out.append(f"{result.n_changed} examples changed (answer, score or status): {result.n_changed_better} better, "
                   f"{result.n_changed_worse} worse, {result.n_changed_same} the same{on}; "
                   f"showing {len(result.changed)}" + (" (--show N for more)" if len(result.changed) < result.n_changed
                                                       else ""))
    for c in result.changed:
        delta = f", {result.primary} {c.delta:+.3f}" if c.delta is not None else ""
        out.append("")
        out.append(f"#{clean(c.key)}  gold {clean(str(c.reference))}: A {clean(repr(c.prediction_a))} ({c.status_a}) → "
                   f"B {clean(repr(c.prediction_b))} ({c.status_b}){delta}")
        out.append(f"   Q: {clean(_clip(c.question, 300))}")
        if c.output_a is not None or c.output_b is not None:
            out.append(f"   A: {clean(_clip(c.output_a or '', 200))}")
            out.append(f"   B: {clean(_clip(c.output_b or '', 200))}")
    sys.stdout.write("\n".join(out) + "\n")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


export_app = typer.Typer(help="Log stored runs to an experiment tracker.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("mlflow")
def export_mlflow_cmd(
    runs: RunIds = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="default: MLFLOW_TRACKING_URI")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment to log into")] = "hyouka",
    prices: PricesOpt = None,
    store: StoreOpt = None,
) -> None:
    """Params, metrics (<metric>/v1/mean), eval_results_table.json and charts, one MLflow run per hyouka run."""
    from hyouka.store.store import RunNotFoundError

    try:
        export_to_mlflow(store, runs or None, prices, tracking_uri=tracking_uri, experiment=experiment)  # type: ignore[arg-type]
    except RunNotFoundError as exc:
        fail(str(exc))


@export_app.command("wandb")
def export_wandb_cmd(
    runs: RunIds = None,
    project: Annotated[str, typer.Option(help="W&B project to log into")] = "hyouka",
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
        fail(str(exc))
        return
    for run_id, path in logged.items():
        console.print(f"{run_id} → {path}")

