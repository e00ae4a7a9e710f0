"""Log runs to Weights & Biases: config, summary metrics, the per-row table and the charts.

One W&B run per hyouka run, grouped by export; ``mode="offline"`` writes everything under
``dir`` for a later ``wandb sync`` and needs no account or network. Metric names are the
same as the MLflow export's. Needs ``pip install 'hyouka[wandb]'``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hyouka.pricing.table import PriceTable
from hyouka.report.build import Report, build_report
from hyouka.report.examples import example_rows
from hyouka.report.export_mlflow import run_metrics, run_params
from hyouka.report.tables import records
from hyouka.store.store import Store


def _wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise ImportError("W&B export needs wandb: pip install 'hyouka[wandb]'") from exc
    return wandb


def export_wandb(
    store: Store,
    run_ids: Iterable[str] | None = None,
    *,
    project: str = "hyouka",
    mode: str = "offline",
    dir: str | Path | None = None,
    prices: PriceTable | str | None = None,
    charts: bool = True,
    report: Report | None = None,
) -> dict[str, str]:
    """Log runs (default: all completed); returns ``{hyouka run id: W&B run directory}``."""
    wandb = _wandb()
    report = report or build_report(store, run_ids, prices=prices, charts=charts)
    group = "hyouka-" + hashlib.sha256(",".join(sorted(v.id for v in report.views)).encode()).hexdigest()[:12]
    common = {"project": project, "group": group, "mode": mode, "dir": str(dir) if dir else None,
              "reinit": "create_new", "resume": "allow",
              "settings": wandb.Settings(silent=True, console="off", x_disable_stats=True)}
    out: dict[str, str] = {}
    for view in report.views:
        run = wandb.init(name=f"{view.subject} · {view.task}", id=f"hyouka-{view.id}", job_type=view.kind,
                         config=run_params(view), **common)
        try:
            run.summary.update(run_metrics(view))
            rows = example_rows([view])
            if rows:
                run.log({"eval_results": _table(wandb, rows)})
            out[view.id] = str(Path(run.dir).parent)
        finally:
            run.finish()
    run = wandb.init(name="hyouka leaderboard", id=group, job_type="leaderboard", **common)
    try:
        board = records(report.board, report.stats)
        if board:
            run.log({"leaderboard": _table(wandb, board)})
        with tempfile.TemporaryDirectory() as tmp:
            for chart in report.charts:
                path = Path(tmp) / f"{chart.key}.png"
                path.write_bytes(chart.to_bytes("png"))
                run.log({f"charts/{chart.key}": wandb.Image(str(path), caption=chart.title)})
        out["leaderboard"] = str(Path(run.dir).parent)
    finally:
        run.finish()
    return out


def _table(wandb: Any, rows: list[dict[str, Any]]) -> Any:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return wandb.Table(columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows])


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
