"""Command-line interface: a thin layer over the Python API, one module per group of commands."""

from __future__ import annotations

from hyouka.cli import benchmark, human, jobs, judging, reports, web  # noqa: F401  (importing registers the commands)
from hyouka.cli._app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
