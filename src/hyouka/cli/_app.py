"""What every command shares: the Typer app, consoles, common options and output helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="hyouka (評価): evaluate large language models, Japanese first.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

Format = Annotated[str, typer.Option("--format", help="table or json (leaderboard: also markdown, csv, html)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="SQLAlchemy URL of the results store")]
JudgeOpt = Annotated[str | None, typer.Option("--judge", help="judge: openai:gpt-4o, recorded:<judgments.jsonl>…")]
JudgeBaseUrlOpt = Annotated[str | None, typer.Option("--judge-base-url", help="the judge's OpenAI-compatible endpoint")]
JudgeMaxTokensOpt = Annotated[int | None, typer.Option(
    "--judge-max-tokens", min=1, help="tokens each judgment may use (MT-Bench: 2048 as FastChat, eval: 1024); "
                                      "lower it for a judge with a short context")]


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


@contextmanager
def progress_bars() -> Iterator[Callable[[str], Callable[[int, int], None]]]:
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


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def judge_backend_options(base_url: str | None) -> dict[str, Any]:
    """Backend options for the judge: its own endpoint, when given."""
    return {"base_url": base_url} if base_url else {}


def export_to_mlflow(store: str | None, run_ids: list[str], prices: Path | None,
                      tracking_uri: str | None = None, experiment: str = "hyouka") -> None:
    """Log stored runs to MLflow (``--mlflow`` on run, and ``export mlflow``)."""
    from hyouka.report.export_mlflow import export_mlflow
    from hyouka.store.store import Store

    try:
        logged = export_mlflow(Store(store), run_ids, tracking_uri=tracking_uri, experiment=experiment,
                               prices=str(prices) if prices else None)
    except ImportError as exc:
        fail(str(exc))
        return
    for run_id, mlflow_id in logged.items():
        console.print(f"run {run_id} → MLflow run {mlflow_id}")
