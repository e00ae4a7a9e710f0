"""The job queue's rules (SQLite, in this process) and an agent's outcomes: phases, cancel, the job id on runs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from hyouka.jobs.agent import Agent, LocalRunner
from hyouka.jobs.resources import Capacity
from hyouka.jobs.spec import Placement, make_spec
from hyouka.jobs.submit import submit
from hyouka.store.queue import JobQueue, JobRow, JobStateError
from hyouka.store.schema import utcnow
from hyouka.store.store import Store
from hyouka.testing.openai_server import Fault, ServerStats, serve_openai


def _job(store: Store, seed: int = 0, priority: int = 0, queue: str = "q", **fields: Any) -> dict[str, Any]:
    spec = make_spec(model="openai:m", tasks="jnli", seed=seed, **fields)
    return submit(spec, Placement(queue=queue, priority=priority), store=store)[0]


def _expire(store: Store, job_id: str) -> None:
    with store.session() as s, s.begin():
        s.execute(update(JobRow).where(JobRow.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_priority_first_then_oldest_and_only_the_holder_reports(store: Store) -> None:
    queue = JobQueue(store)
    low, high, low2 = _job(store, 0), _job(store, 1, priority=5), _job(store, 2)
    order = [queue.lease("q", "a", lease_seconds=30)["id"] for _ in range(3)]
    assert order == [high["id"], low["id"], low2["id"]]
    assert queue.lease("q", "a", lease_seconds=30) is None and queue.lease("other", "a", lease_seconds=30) is None
    assert not queue.finish(high["id"], "b", "succeeded")  # b holds no lease on it
    assert queue.start(high["id"], "a") and queue.finish(high["id"], "a", "succeeded", run_ids=["r1"])
    assert queue.get(high["id"][:8])["state"] == "succeeded"
    with pytest.raises(JobStateError, match="succeeded already"):
        queue.cancel(high["id"])
    with pytest.raises(JobStateError, match="--force"):
        queue.retry(high["id"])


def test_an_expired_lease_is_taken_over_and_fails_after_its_attempts(store: Store) -> None:
    queue = JobQueue(store)
    job = _job(store)
    with store.session() as s, s.begin():
        s.execute(update(JobRow).values(max_attempts=2))
    assert queue.lease("q", "a", lease_seconds=30)["attempts"] == 1
    assert queue.lease("q", "b", lease_seconds=30) is None  # a's lease is live
    assert queue.heartbeat("a", [job["id"]], lease_seconds=30) == {job["id"]}
    _expire(store, job["id"])
    taken = queue.lease("q", "b", lease_seconds=30)
    assert taken["agent"] == "b" and taken["attempts"] == 2
    assert queue.heartbeat("a", [job["id"]], lease_seconds=30) == set()  # a learns it lost the job
    assert not queue.finish(job["id"], "a", "succeeded")
    _expire(store, job["id"])
    assert queue.lease("q", "c", lease_seconds=30) is None
    failed = queue.get(job["id"])
    assert failed["state"] == "failed" and failed["phase"] == "agent" and "2 attempts" in failed["error"]
    events = [e["event"] for e in queue.events(job["id"])]
    assert events == ["submitted", "leased", "lease expired", "leased", "lease expired", "failed"]
    assert queue.retry(job["id"])["attempts"] == 0
    assert queue.lease("q", "c", lease_seconds=30)["attempts"] == 1


def test_handing_back_does_not_use_an_attempt_and_can_wait(store: Store) -> None:
    queue = JobQueue(store)
    job = _job(store)
    queue.lease("q", "a", lease_seconds=30)
    assert queue.release(job["id"], "a", "stopping", delay_s=60)
    assert queue.get(job["id"])["attempts"] == 0
    assert queue.lease("q", "a", lease_seconds=30) is None  # not before its delay
    assert queue.pending("q") == 1


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jglue_dir: Path) -> Path:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HYOUKA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HYOUKA_JGLUE_DIR", str(jglue_dir))
    return tmp_path


def _submit_echo(store: Store, url: str, **fields: Any) -> dict[str, Any]:
    fields = {"mode": "generate", "limit": 4, "max_tokens": 4, **fields}
    options = {"base_url": url, "concurrency": 2, **fields.pop("model_options", {})}
    spec = make_spec(model=fields.pop("model", "openai:echo"), model_options=options, tasks="jnli", **fields)
    return submit(spec, Placement(queue="q"), store=store)[0]


def _agent(store: Store, **kw: Any) -> Agent:
    return Agent(store, "q", until_empty=True, poll_seconds=0.05, runner=LocalRunner(Capacity(0, 4)), **kw)


def test_each_failure_records_its_phase(store: Store, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(info: Any) -> Fault | None:
        return Fault(400, message="model not allowed")

    with serve_openai(delay_s=0.0) as url, serve_openai(fail=refuse) as failing:
        ok = _submit_echo(store, url)
        data = _submit_echo(store, url, data_dir=str(env / "empty"))
        load = _submit_echo(store, url, model="hf:./no-such-model-folder", model_options={"base_url": None})
        calls = _submit_echo(store, failing)
        report = _agent(store).run()
        import hyouka.engine.runner as runner

        def broken(*_a: Any, **_k: Any) -> Any:
            raise ZeroDivisionError("a metric divided by zero")

        monkeypatch.setattr(runner, "compute_aggregates", broken)
        scoring = _submit_echo(store, url, seed=7)
        _agent(store).run()
    queue = JobQueue(store)
    got = {name: queue.get(j["id"]) for name, j in
           {"ok": ok, "data": data, "load": load, "calls": calls, "scoring": scoring}.items()}
    assert got["ok"]["state"] == "succeeded" and got["ok"]["phase"] is None
    assert sorted(report.succeeded) == [ok["id"]]
    assert got["ok"]["summary"]["runs"][0]["n_samples"] == 4
    expected = {"data": ("data", "jnli"), "load": ("load", "no-such-model-folder"),
                "calls": ("model call", "400"), "scoring": ("scoring", "divided by zero")}
    for name, (phase, words) in expected.items():
        job = got[name]
        assert (job["state"], job["phase"]) == ("failed", phase), (name, job["error"])
        assert words in job["error"], (name, job["error"])
    assert "jobs retry" in got["calls"]["error"]  # the run stays open: a retry pays only the failed calls
    (run,) = [r for r in store.list_runs() if r["job_id"] == ok["id"]]
    assert got["ok"]["run_ids"] == [run["id"]] and run["status"] == "completed"
    from hyouka.web.data import run_data

    assert run_data(store.get_run(run["id"]))["job_id"] == ok["id"]  # the dashboard's run page shows it


def test_cancelling_a_running_job_stops_it_at_the_next_heartbeat(store: Store, env: Path) -> None:
    stats = ServerStats()
    with serve_openai(delay_s=0.05, stats=stats) as url:
        job = _submit_echo(store, url, limit=400, model_options={"concurrency": 1})
        agent = _agent(store, lease_seconds=0.6)
        thread = threading.Thread(target=agent.run)
        thread.start()
        deadline = time.monotonic() + 60
        while stats.requests < 10:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        JobQueue(store).cancel(job["id"])
        thread.join(timeout=60)
        asked = stats.requests
    assert not thread.is_alive() and agent.report.lost == [job["id"]]
    assert asked < 100  # it stopped within a heartbeat or so, not after all 400 documents
    assert JobQueue(store).get(job["id"])["state"] == "cancelled"
    (run,) = store.list_runs()
    assert run["status"] == "interrupted" and run["job_id"] == job["id"] and run["owner"] is None
