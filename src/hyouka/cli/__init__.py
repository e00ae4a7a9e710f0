"""Command-line interface: a thin layer over the Python API, one module per group of commands."""

from __future__ import annotations

from hyouka.cli import (  # noqa: F401  (importing registers the commands)
    benchmark,
    human,
    jobs,
    judging,
    ladder,
    rag,
    reports,
    web,
)
from hyouka.cli._app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
