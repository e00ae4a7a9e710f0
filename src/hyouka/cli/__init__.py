"""Command-line interface: a thin layer over the Python API, one module per group of commands.

Commands are registered in :data:`COMMANDS`, command name -> module, in the order ``hyouka
--help`` lists them. A module is imported only when one of its commands runs (``hyouka --help``
imports them all to show each command's own short help), so a command pays for no other's imports.

Adding commands: write ``src/hyouka/cli/<group>.py`` with its own ``app = typer.Typer()`` and
``@app.command()`` functions (or ``app.add_typer(sub, name=...)`` for a sub-group), keep its heavy
imports inside the commands, and add one line per command name to :data:`COMMANDS`. Shared
options and output helpers are in :mod:`hyouka.cli._app`. A read-only command that must answer
fast (no pydantic) is plain click in an ``app = click.Group()`` instead, as :mod:`hyouka.cli.browse`.
"""

from __future__ import annotations

import typer

from hyouka.cli._lazy import lazy_group

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
    "report": "hyouka.cli.reports",
    "compare": "hyouka.cli.reports",
    "serve": "hyouka.cli.web",
    "human": "hyouka.cli.human",
    "export": "hyouka.cli.reports",
}



def _root() -> None:  # the group's own callback: nothing to do (Typer makes a group only for an app with one)
    pass


app = typer.Typer(cls=lazy_group(COMMANDS), callback=_root, no_args_is_help=True,
                  help="hyouka (評価): evaluate large language models, Japanese first.")


def main() -> None:  # pragma: no cover
    app()
