"""Output helpers every command shares, with no Typer in them: consoles, JSON, numbers, errors.

The plain click commands (:mod:`hyouka.cli.browse`) run without importing Typer, so what they
print with lives here; :mod:`hyouka.cli._app` adds the Typer options and re-exports all of it.
Rich's console is built on first use (importing Rich costs more than most commands' work).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

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
BoardFormat = Literal["table", "json", "jsonl", "markdown", "md", "csv", "html"]
FORMAT_HELP = "table, json (one document) or jsonl (one JSON value per line)"
STORE_HELP = "SQLAlchemy URL of the results store (default: HYOUKA_STORE_URL or ~/.hyouka/results.sqlite)"


def escape(text: str) -> str:
    """``text`` safe inside Rich markup (Rich is imported only where a command prints with it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, unwrapped (paths stay whole to copy)."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


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
