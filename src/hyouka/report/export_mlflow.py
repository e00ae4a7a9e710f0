"""Log runs to MLflow: params, metrics, the per-row table and the charts, to any tracking URI.

Each hyouka run becomes one MLflow run, nested under a parent run that holds the
leaderboard and the charts. Metric names follow MLflow's evaluation convention,
``<metric>/v1/mean`` (plus ``/variance`` and ``/p90`` for per-row scores, and the bootstrap
interval as ``/ci_low``, ``/ci_high``); the per-row table is ``eval_results_table.json``, as
``mlflow.evaluate`` writes it. Exporting the same runs again updates the same MLflow runs
(found by the ``hyouka.run_id`` tag). Secrets are scrubbed from params. Needs
``pip install 'hyouka[mlflow]'``.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyouka.pricing.table import PriceTable
from hyouka.report.build import Report, build_report
from hyouka.report.examples import example_rows
from hyouka.report.safe import scrub
from hyouka.report.tables import records
from hyouka.report.views import RunView
from hyouka.store.store import Store

METRIC_VERSION = "v1"  # version of hyouka's metric definitions in MLflow metric names
TABLE_FILE = "eval_results_table.json"
_PARAM_MAX = 6000
_BAD_NAME = re.compile(r"[^\w\-. /:]")


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError("MLflow export needs mlflow: pip install 'hyouka[mlflow]'") from exc
    return mlflow


def _name(text: str) -> str:
    return _BAD_NAME.sub("_", text)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif value is not None:
        out[_name(prefix)] = str(value)[:_PARAM_MAX]


def run_params(view: RunView) -> dict[str, str]:
    """A run's configuration, versions and identity as flat MLflow params (secrets scrubbed)."""
    run = view.run
    out: dict[str, str] = {}
    _flatten("", {
        "hyouka_run_id": run["id"], "kind": view.kind, "model": run["model"], "subject_model": view.subject,
        "task": run["task"], "task_version": run.get("task_version"), "task_hash": run.get("task_hash"),
        "mode": run.get("mode"), "suite": run.get("suite"), "config_hash": run.get("config_hash"),
        "n_samples": run.get("n_samples"),
    }, out)
    skip = ("model", "task", "mode", "model_identity")
    config = {k: v for k, v in (run.get("config") or {}).items() if k not in skip}
    _flatten("config", scrub(config), out)
    _flatten("identity", scrub(run.get("model_identity") or {}), out)
    _flatten("version", run.get("versions") or {}, out)
    return out


def run_metrics(view: RunView) -> dict[str, float]:
    """Aggregates as ``<metric>/v1/<stat>``, per-row spread, and the run's latency, tokens and cost."""
    out: dict[str, float] = {}
    for name, agg in view.aggregates.items():
        base = f"{_name(name)}/{METRIC_VERSION}"
        for stat, key in (("mean", "value"), ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("stderr", "stderr"),
                          ("n_scored", "n_scored")):
            if agg.get(key) is not None:
                out[f"{base}/{stat}"] = float(agg[key])
    per_row: dict[str, list[float]] = {}
    for sample in view.samples:
        for name, value in (sample.get("metrics") or {}).items():
            if isinstance(value, (int, float)):
                per_row.setdefault(name, []).append(float(value))
    for name, values in per_row.items():
        base = f"{_name(name)}/{METRIC_VERSION}"
        arr = np.asarray(values)
        out.setdefault(f"{base}/mean", float(arr.mean()))
        out[f"{base}/variance"] = float(arr.var())
        out[f"{base}/p90"] = float(np.percentile(arr, 90))
    acc = view.accounting
    latency = acc.get("latency_s") or {}
    ttft = acc.get("ttft_s") or {}
    for key, value in {
        "latency/p50_s": latency.get("p50"), "latency/p95_s": latency.get("p95"), "latency/mean_s": latency.get("mean"),
        "ttft/p50_s": ttft.get("p50"), "ttft/p95_s": ttft.get("p95"),
        "tokens/prompt": acc.get("prompt_tokens"), "tokens/completion": acc.get("completion_tokens"),
        "tokens/total": acc.get("total_tokens"), "calls/total": acc.get("n_calls"),
        "calls/cached": acc.get("n_cached_calls"), "calls/failed": acc.get("n_failed_calls"),
        "cost_usd": acc.get("cost_usd"), "spent_usd": acc.get("spent_usd"),
        "throughput/completion_tokens_per_s": acc.get("completion_tokens_per_s"),
    }.items():
        if value is not None:
            out[key] = float(value)
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Logger:
    """A thin layer over ``MlflowClient`` (no global MLflow state is touched)."""

    def __init__(self, tracking_uri: str | None, experiment: str) -> None:
        mlflow = _mlflow()
        from mlflow.tracking import MlflowClient

        self.mlflow = mlflow
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)

    def run_for(self, tag: str, value: str, name: str, parent: str | None = None) -> str:
        existing = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{tag}` = '{value}'",
                                           max_results=1)
        if existing:
            return existing[0].info.run_id
        tags = {tag: value, "mlflow.source.name": "hyouka"}
        if parent:
            tags["mlflow.parentRunId"] = parent
        return self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id

    def log(self, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        for chunk in _batches([Param(k, v) for k, v in params.items()], 100):
            self.client.log_batch(run_id, params=chunk)
        for chunk in _batches([Metric(k, v, now, 0) for k, v in metrics.items()], 1000):
            self.client.log_batch(run_id, metrics=chunk)


def export_mlflow(
    store: Store,
    run_ids: Iterable[str] | None = None,
    *,
    tracking_uri: str | None = None,
    experiment: str = "hyouka",
    prices: PriceTable | str | None = None,
    charts: bool = True,
    report: Report | None = None,
) -> dict[str, str]:
    """Log runs (default: all completed) to MLflow; returns ``{hyouka run id: MLflow run id}``."""
    report = report or build_report(store, run_ids, prices=prices, charts=charts)
    logger = _Logger(tracking_uri, experiment)
    ids = sorted(v.id for v in report.views)
    group = hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]
    parent = logger.run_for("hyouka.export", group, f"hyouka: {len(ids)} run(s)")
    parent_metrics = {}
    boards = list(zip(report.boards, report.all_stats, strict=True)) or [(report.board, report.stats)]
    for board, stats in boards:  # every table the report shows (a suite, MT-Bench, eval runs…)
        rank = 0
        for row, stat in zip(board.rows, stats, strict=True):
            label = _name(f"{row.model} {row.setting}").replace("/", "_")
            if row.average is not None:
                parent_metrics[f"leaderboard/{label}/average"] = row.average
            if stat.cost_usd is not None:
                parent_metrics[f"leaderboard/{label}/cost_usd"] = stat.cost_usd
            if board.has_average and not row.partial:
                rank += 1
                parent_metrics[f"leaderboard/{label}/rank"] = float(rank)
    logger.log(parent, {"hyouka_runs": ",".join(ids)[:_PARAM_MAX]}, parent_metrics)
    tables = [{"title": b.title, "suite": b.suite, "rows": records(b, s)} for b, s in boards]
    logger.client.log_dict(parent, {"tables": tables}, "leaderboard.json")
    if report.charts:
        with tempfile.TemporaryDirectory() as tmp:
            for chart in report.charts:
                path = Path(tmp) / f"{chart.key}.png"
                path.write_bytes(chart.to_bytes("png"))
                logger.client.log_artifact(parent, str(path), "charts")

    out: dict[str, str] = {}
    for view in report.views:
        run_id = logger.run_for("hyouka.run_id", view.id, f"{view.subject} · {view.task}", parent=parent)
        logger.log(run_id, run_params(view), run_metrics(view))
        rows = example_rows([view])
        if rows:
            import pandas as pd

            logger.client.log_table(run_id, pd.DataFrame(rows), TABLE_FILE)
        status = "FINISHED" if view.run["status"] == "completed" else "KILLED"
        logger.client.set_terminated(run_id, status=status)
        out[view.id] = run_id
    logger.client.set_terminated(parent, status="FINISHED")
    return out
