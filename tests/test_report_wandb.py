"""W&B export in offline mode: one run per hyouka run with config, summary metrics and the per-row table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_report import SCRIPT, filled  # noqa: F401  (the fixture)


def test_offline_export_writes_runs_tables_and_charts(
    filled: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    pytest.importorskip("wandb")
    pytest.importorskip("matplotlib")
    from hyouka.report.export_wandb import export_wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    store, runs = filled["store"], filled["runs"]
    ids = [runs["usage-model"], runs["cheap-model"], runs["judge"]]
    logged = export_wandb(store, ids, project="hyouka-test", dir=tmp_path)
    assert set(logged) == {*ids, "leaderboard"}

    cheap = Path(logged[runs["cheap-model"]])
    assert cheap.name.startswith("offline-run-") and cheap.name.endswith(f"hyouka-{runs['cheap-model']}")
    (table_file,) = cheap.glob("files/media/table/eval_results_*.table.json")
    table = json.loads(table_file.read_text(encoding="utf-8"))
    outputs = [row[table["columns"].index("output")] for row in table["data"]]
    assert len(outputs) == 12 and all(SCRIPT in o for o in outputs)
    record = next(cheap.glob("*.wandb")).read_bytes()
    assert b"acc/v1/mean" in record and b"cost_usd" in record  # summary metrics in the run's record

    charts = sorted(p.name.split("_")[0] for p in Path(logged["leaderboard"]).glob("files/media/images/charts/*.png"))
    assert len(charts) == 5
    judge = Path(logged[runs["judge"]]).glob("*.wandb")
    assert b"sk-secret-value" not in next(judge).read_bytes()
