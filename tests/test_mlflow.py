"""MLflow export against a real ``mlflow server`` (SQLite backend, 127.0.0.1), read back with MlflowClient."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hyouka.cli import app
from tests.test_report import JUDGE, SCRIPT, filled  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow  # the server takes ~10 s to start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _table(client: Any, run_id: str, tmp: Path) -> dict[str, Any]:
    path = client.download_artifacts(run_id, "eval_results_table.json", str(tmp))
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_export_logs_metrics_params_table_and_charts(
    filled: dict[str, Any], mlflow_server: str, tmp_path: Path  # noqa: F811
) -> None:
    from mlflow.tracking import MlflowClient

    from hyouka.report.export_mlflow import export_mlflow

    store, runs = filled["store"], filled["runs"]
    ids = [runs["usage-model"], runs["cheap-model"], runs["judge"]]
    logged = export_mlflow(store, ids, tracking_uri=mlflow_server, experiment="hyouka-test")
    assert set(logged) == set(ids)
    client = MlflowClient(tracking_uri=mlflow_server)

    usage = client.get_run(logged[runs["usage-model"]])
    acc = store.aggregates(runs["usage-model"])["acc"]
    metrics = usage.data.metrics
    assert metrics["acc/v1/mean"] == pytest.approx(acc["value"])
    assert metrics["acc/v1/ci_low"] == pytest.approx(acc["ci_low"])
    assert "acc/v1/variance" in metrics and "acc/v1/p90" in metrics
    own_cost = sum(s["cost_usd"] for s in store.samples(runs["usage-model"]))
    assert metrics["cost_usd"] == pytest.approx(own_cost)
    assert metrics["latency/p50_s"] > 0 and metrics["tokens/total"] > 0
    assert usage.data.params["task"] == "jnli" and usage.data.params["hyouka_run_id"] == runs["usage-model"]
    assert usage.data.tags["hyouka.run_id"] == runs["usage-model"]

    table = _table(client, usage.info.run_id, tmp_path / "usage")
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    samples = store.samples(runs["usage-model"])
    assert len(rows) == len(samples) == 12
    assert [r["output"] for r in rows] == [s["output"] for s in samples]
    assert [r["metric/acc"] for r in rows] == [s["metrics"]["acc"] for s in samples]

    cheap_rows = _table(client, logged[runs["cheap-model"]], tmp_path / "cheap")
    assert all(SCRIPT in row[cheap_rows["columns"].index("output")] for row in cheap_rows["data"])

    judge = client.get_run(logged[runs["judge"]])
    assert judge.data.metrics["score/v1/mean"] == pytest.approx(5.5)
    assert judge.data.params["model"] == JUDGE and judge.data.params["subject_model"] == "UsageModel:usage-model"
    assert judge.data.params["config.api_key"] == "[redacted]"
    assert "sk-secret-value" not in json.dumps(judge.data.params)
    judge_table = _table(client, judge.info.run_id, tmp_path / "judge")
    assert judge_table["columns"].count("justification") == 1 and "metric/score" in judge_table["columns"]

    parent_id = usage.data.tags["mlflow.parentRunId"]
    charts = {a.path for a in client.list_artifacts(parent_id, "charts")}
    assert charts == {f"charts/{k}.png" for k in ("metrics", "latency", "quality_cost", "quality_latency",
                                                  "categories")}

    # Exporting again updates the same MLflow runs.
    assert export_mlflow(store, ids, tracking_uri=mlflow_server, experiment="hyouka-test", charts=False) == logged


def test_run_with_mlflow_flag(
    jglue_dir: Path, hyouka_home: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    from mlflow.tracking import MlflowClient

    from hyouka.testing.openai_server import EchoModel, serve_openai

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    with serve_openai(EchoModel(reply="中立")) as url:
        result = CliRunner().invoke(app, ["run", "--model", "openai:echo", "--base-url", url, "--tasks", "jnli",
                                          "--mode", "generate", "--limit", "4", "--data-dir", str(jglue_dir),
                                          "--no-cache", "--mlflow"])
    assert result.exit_code == 0, result.output
    assert "MLflow run" in result.output
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("hyouka")
    found = client.search_runs([experiment.experiment_id], filter_string="params.task = 'jnli'")
    assert len(found) == 1 and found[0].data.params["model"] == "openai:echo"
    assert found[0].data.metrics["acc/v1/n_scored"] == 4.0
