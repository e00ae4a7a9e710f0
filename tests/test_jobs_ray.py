"""A real local Ray cluster (token authentication on): `hyouka run --ray` over shards, and jobs as Ray tasks.

One cluster for the session (``ray.init(num_cpus=2, include_dashboard=False)``); the model is the
test server's echo model behind a delay, so the work is waiting and 2 cores suffice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.jobs.agent import Agent
from hyouka.jobs.replicas import build_replicas
from hyouka.jobs.spec import Placement, make_spec
from hyouka.jobs.submit import submit
from hyouka.models.base import GenerationParams, Response
from hyouka.store.queue import JobQueue
from hyouka.store.store import Store
from hyouka.testing.openai_server import EchoModel, ServerStats, serve_openai

pytestmark = [pytest.mark.slow, pytest.mark.ray]
SRC = Path(__file__).resolve().parents[1] / "src"
FIELDS = ("sample_index", "doc_id", "prompt", "output", "extracted", "prediction", "reference", "metrics", "status",
          "requests")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, jglue_dir: Path) -> Iterator[Any]:
    os.environ["RAY_AUTH_MODE"] = "token"  # before Ray is imported, which reads it (as connect() insists)
    ray = pytest.importorskip("ray")
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    assert is_token_auth_enabled()
    home = tmp_path_factory.mktemp("ray-home")
    env = {"HYOUKA_HOME": str(home), "HYOUKA_JGLUE_DIR": str(jglue_dir), "OPENAI_API_KEY": "sk-test",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield ray
    finally:
        ray.shutdown()


class LabelModel(EchoModel):
    """Answers a JNLI label chosen by the prompt's characters: answers differ from document to document."""

    def _answer(self, text: str, params: GenerationParams) -> Response:
        label = ("含意", "矛盾", "中立")[sum(map(ord, text)) % 3]
        return Response(text=label, prompt_tokens=len(text), completion_tokens=len(label), finish_reason="stop")


def _records(store: Store, run_id: str) -> list[dict[str, Any]]:
    return [{k: s[k] for k in FIELDS} for s in store.samples(run_id)]


def _timed_run(url: str, store: Store, replicas: Any) -> tuple[float, str]:
    started = time.perf_counter()
    result = hyouka.run("openai:echo", "jnli", mode="generate", limit=48, store=store, cache=False,
                        backend=replicas, base_url=url, concurrency=2)
    return time.perf_counter() - started, result.runs[0].run_id


def test_run_on_ray_shards_gives_the_same_records_and_four_shards_are_over_3x_faster(
    ray_cluster: Any, tmp_path: Path, jglue_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HYOUKA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HYOUKA_JGLUE_DIR", str(jglue_dir))
    stats = ServerStats()
    with serve_openai(LabelModel(), delay_s=0.2, stats=stats) as url:
        options = {"base_url": url, "concurrency": 2}
        here = Store(f"sqlite:///{tmp_path / 'here.sqlite'}")
        # one generation per document, in this process
        local = hyouka.run("openai:echo", "jnli", mode="generate", limit=48, store=here, cache=False, **options)
        one, four = build_replicas("openai:echo", options, shards=1, ray="auto"), None
        try:
            four = build_replicas("openai:echo", options, shards=4, ray="auto")
            one_s, one_run = _timed_run(url, Store(f"sqlite:///{tmp_path / 'one.sqlite'}"), one)
            four_s, four_run = _timed_run(url, Store(f"sqlite:///{tmp_path / 'four.sqlite'}"), four)
        finally:
            one.close()
            if four is not None:
                four.close()
        cli_store = f"sqlite:///{tmp_path / 'cli.sqlite'}"
        cli = CliRunner().invoke(app, ["run", "--model", "openai:echo", "--base-url", url, "--concurrency", "2",
                                       "--tasks", "jnli", "--mode", "generate", "--limit", "48", "--no-cache",
                                       "--store",
                                       cli_store, "--ray", "auto", "--shards", "4"])
    assert cli.exit_code == 0, cli.output
    expected = _records(here, local.runs[0].run_id)
    assert len(expected) == 48 and {r["status"] for r in expected} == {"ok"}
    assert len({r["prediction"] for r in expected}) == 3
    for url_, run_id in ((f"sqlite:///{tmp_path / 'one.sqlite'}", one_run),
                         (f"sqlite:///{tmp_path / 'four.sqlite'}", four_run)):
        store = Store(url_)
        assert _records(store, run_id) == expected
        assert store.get_run(run_id)["config_hash"] == here.get_run(local.runs[0].run_id)["config_hash"]
    (cli_run,) = Store(cli_store).list_runs()
    assert cli_run["status"] == "completed" and _records(Store(cli_store), cli_run["id"]) == expected
    print(f"\none shard {one_s:.2f} s, four shards {four_s:.2f} s: {one_s / four_s:.2f}x")
    assert one_s / four_s >= 3.0, f"four shards took {four_s:.2f} s, one {one_s:.2f} s"


def test_an_agent_on_ray_runs_each_job_as_a_ray_task_within_the_cluster(ray_cluster: Any, tmp_path: Path) -> None:
    from hyouka.jobs.ray_cluster import RayRunner

    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    with serve_openai(delay_s=0.05) as url:
        options = {"base_url": url, "concurrency": 4}
        jobs = [submit(make_spec(model="openai:echo", model_options=options, tasks="jnli", mode="generate",
                                 limit=6, max_tokens=4, seed=i), Placement(queue="ray"), store=store)[0]
                for i in range(3)]
        needs_gpu = submit(make_spec(model="hf:org/model", tasks="jnli"), Placement(queue="ray", num_gpus=1),
                           store=store)[0]
        runner = RayRunner("auto")
        assert runner.capacity.cpus == 2 and runner.capacity.gpus == 0
        report = Agent(store, "ray", max_jobs=3, until_empty=True, poll_seconds=0.1, runner=runner).run()
    queue = JobQueue(store)
    assert sorted(report.succeeded) == sorted(j["id"] for j in jobs), [queue.get(j["id"])["error"] for j in jobs]
    for job in jobs:
        done = queue.get(job["id"])
        assert done["state"] == "succeeded"
        host_pid = done["summary"]["ran_on"]
        assert not host_pid.endswith(f":{os.getpid()}")  # on a Ray worker, not in this process
        (run,) = [r for r in store.list_runs() if r["job_id"] == job["id"]]
        assert done["run_ids"] == [run["id"]] and run["status"] == "completed"
    assert queue.get(needs_gpu["id"])["state"] == "queued"  # the cluster has no GPU: refused, left for another
