"""What every command shares: consoles, common options and output helpers.

Importing this (every command module does) stays cheap: Rich's console is built on first use,
and the read-only commands print with :mod:`hyouka.cli.text_table`. The options' help texts are
constants here so that the plain click commands (:mod:`hyouka.cli.browse`) say the same.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

if TYPE_CHECKING:
    from rich.console import Console

class _LazyConsole:
    """A Rich console made on first use (importing Rich costs more than most commands' work)."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # soft wrap: a long line (an id, a path) stays one line in a pipe instead of being cut at 80
            self._console = Console(stderr=self._stderr, soft_wrap=not self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)

# --format: one JSON document (json) or one JSON value per line (jsonl) on every command
OutputFormat = Literal["table", "json", "jsonl"]
FORMAT_HELP = "table, json (one document) or jsonl (one JSON value per line)"
STORE_HELP = "SQLAlchemy URL of the results store (default: HYOUKA_STORE_URL or ~/.hyouka/results.sqlite)"
Format = Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)]
BoardFormat = Literal["table", "json", "jsonl", "markdown", "md", "csv", "html"]
StoreOpt = Annotated[str | None, typer.Option("--store", help=STORE_HELP)]
JudgeOpt = Annotated[str | None, typer.Option(
    "--judge", help="the judge model: openai:gpt-4o, recorded:<judgments.jsonl>…")]
JudgeBaseUrlOpt = Annotated[str | None, typer.Option(
    "--judge-base-url", help="the judge's OpenAI-compatible endpoint, when it is not the model's")]
JudgeMaxTokensOpt = Annotated[int | None, typer.Option(
    "--judge-max-tokens", min=1, help="tokens each judgment may use (MT-Bench: 2048 as FastChat, eval: 1024); "
                                      "lower it for a judge with a short context")]


def escape(text: str) -> str:
    """``text`` safe inside Rich markup (Rich is imported only where a command prints with it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, unwrapped (paths stay whole to copy)."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def fail(message: str) -> None:
    print_error(message)
    raise typer.Exit(code=2)


def api_error(exc: BaseException, flags: Mapping[str, str] | None = None) -> str:
    """An error of the Python API in the command line's words: its keywords become the command's flags."""
    from hyouka.errors import ArgumentError

    if isinstance(exc, ArgumentError):
        return exc.for_cli(flags or {})
    return str(exc)


def emit(document: Any, format: str, lines: Sequence[Any] | None = None) -> None:
    """Print ``document`` as one JSON document (``json``) or ``lines`` one per line (``jsonl``).

    ``lines`` defaults to the document's items when it is a list, else the document itself.
    """
    dumps = _json_dumps
    if format == "json":
        sys.stdout.write(dumps(document) + "\n")
        return
    if lines is None:
        lines = document if isinstance(document, list) else [document]
    sys.stdout.write("".join(dumps(item) + "\n" for item in lines))


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@contextmanager
def progress_bars() -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """Progress per task on stderr: samples done of all, rate, time spent and time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("samples"),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err.get(),
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
