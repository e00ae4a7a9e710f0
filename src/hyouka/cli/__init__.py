"""Command-line interface: a thin layer over the Python API, one module per group of commands.

Commands are registered in :data:`COMMANDS`, command name -> module, in the order ``hyouka
--help`` lists them. A module is imported only when one of its commands runs (``hyouka --help``
imports them all to show each command's own short help), so a command pays for no other's imports.

Adding commands: write ``src/hyouka/cli/<group>.py`` with its own ``app = typer.Typer()`` and
``@app.command()`` functions (or ``app.add_typer(sub, name=...)`` for a sub-group), keep its heavy
imports inside the commands, and add one line per command name to :data:`COMMANDS`. Shared
options and output helpers are in :mod:`hyouka.cli._app`. A read-only command that must answer
at once is plain click in an ``app = click.Group()`` instead, importing only
:mod:`hyouka.cli._output` (as :mod:`hyouka.cli.browse`): it then runs without importing Typer,
which with pydantic is most of a Typer command's start-up.

:data:`app` is the ``hyouka`` console script. It is the Typer app (:mod:`hyouka.cli._lazy`: the
root group finds each command by name) in all but one way: called from the command line with a
plain click command, it runs that command straight away, before importing Typer.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "app", "main"]

COMMANDS: dict[str, str] = {
    "run": "hyouka.cli.benchmark",
    "runs": "hyouka.cli.browse",
    "show": "hyouka.cli.browse",
    "score": "hyouka.cli.benchmark",
    "leaderboard": "hyouka.cli.browse",
    "tasks": "hyouka.cli.browse",
    "eval": "hyouka.cli.judging",
    "pairwise": "hyouka.cli.judging",
    "agreement": "hyouka.cli.judging",
    "ladder": "hyouka.cli.ladder",
    "report": "hyouka.cli.reports",
    "compare": "hyouka.cli.reports",
    "serve": "hyouka.cli.web",
    "human": "hyouka.cli.human",
    "index": "hyouka.cli.rag",
    "submit": "hyouka.cli.jobs",
    "agent": "hyouka.cli.jobs",
    "jobs": "hyouka.cli.jobs",
    "export": "hyouka.cli.reports",
}

HELP = "hyouka (評価): evaluate large language models, Japanese first."


@cache
def typer_app() -> Any:
    """The Typer app of every command in :data:`COMMANDS`."""
    import typer

    from hyouka.cli._lazy import lazy_group

    def root() -> None:  # the group's own callback: nothing to do (Typer makes a group only for an app with one)
        pass

    return typer.Typer(cls=lazy_group(COMMANDS), callback=root, no_args_is_help=True, help=HELP)


def click_command(name: str) -> Any | None:
    """The command ``name`` when its module writes it in plain click, else None (a Typer command)."""
    module = COMMANDS.get(name)
    if module is None:
        return None
    commands = getattr(importlib.import_module(module).app, "commands", None)  # a click.Group's, not a Typer's
    return commands.get(name) if isinstance(commands, dict) else None


class _App:
    """``hyouka``: :func:`typer_app`, except that ``hyouka <plain click command> …`` runs without Typer.

    Anything but a call from the command line is the Typer app's (``typer.main.get_command(app)``,
    ``typer.testing.CliRunner``), where a plain click command runs the same way, under the root.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs and len(sys.argv) > 1:
            command = click_command(sys.argv[1])
            if command is not None:
                prog = Path(sys.argv[0]).name or "hyouka"
                return command.main(args=sys.argv[2:], prog_name=f"{prog} {sys.argv[1]}")
        return typer_app()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(typer_app(), name)


app: Any = _App()


def main() -> None:  # pragma: no cover
    app()
