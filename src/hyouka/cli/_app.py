"""What every Typer command shares: its common options, ``fail``, and the output helpers.

The output helpers (consoles, ``emit``, ``fmt``, ``escape``…) are :mod:`hyouka.cli._output`'s,
re-exported here, so a command module imports all it needs from this one. The options' help
texts are constants there so that the plain click commands (:mod:`hyouka.cli.browse`) say the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._output import (
    FORMAT_HELP,
    STORE_HELP,
    BoardFormat,
    OutputFormat,
    api_error,
    console,
    emit,
    err,
    escape,
    fmt,
    print_error,
    progress_bars,
    usd,
)

__all__ = ["FORMAT_HELP", "STORE_HELP", "BoardFormat", "Format", "JudgeBaseUrlOpt", "JudgeMaxTokensOpt", "JudgeOpt",
           "OutputFormat", "StoreOpt", "api_error", "console", "emit", "err", "escape", "export_to_mlflow", "fail",
           "fmt", "judge_backend_options", "parse_data_files", "print_error", "progress_bars", "usd"]

Format = Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)]
StoreOpt = Annotated[str | None, typer.Option("--store", help=STORE_HELP)]
JudgeOpt = Annotated[str | None, typer.Option(
    "--judge", help="the judge model: openai:gpt-4o, recorded:<judgments.jsonl>…")]
JudgeBaseUrlOpt = Annotated[str | None, typer.Option(
    "--judge-base-url", help="the judge's OpenAI-compatible endpoint, when it is not the model's")]
JudgeMaxTokensOpt = Annotated[int | None, typer.Option(
    "--judge-max-tokens", min=1, help="tokens each judgment may use (MT-Bench: 2048 as FastChat, eval: 1024); "
                                      "lower it for a judge with a short context")]


def fail(message: str) -> None:
    print_error(message)
    raise typer.Exit(code=2)


def parse_data_files(items: list[str]) -> dict[str, str]:
    """``--data-file TASK=PATH`` options as ``{task: path}``; anything else fails naming the option."""
    out = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep:
            fail(f"--data-file takes TASK=PATH, got {item!r}")
        out[task] = path
    return out


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
