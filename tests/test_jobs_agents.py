"""Real `hyouka agent` processes against the delayed local endpoint: many agents, kill -9, SIGTERM.

The queue lives in SQLite and in a real PostgreSQL server (tests/postgres.py). Each test starts the
OpenAI-compatible test server in this process and the agents as subprocesses, then reads the
server's request counts, the job queue and the runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hyouka.jobs.spec import Placement, make_spec
from hyouka.jobs.submit import submit_all
from hyouka.store.queue import JobQueue
from hyouka.store.store import Store
from hyouka.testing.openai_server import ServerStats, serve_openai
from tests import postgres

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.sqlite'}"
    return postgres.new_database(request.getfixturevalue("pg_server"))


def _env(home: Path, jglue_dir: Path) -> dict[str, str]:
    env = {**os.environ, "HYOUKA_HOME": str(home), "HYOUKA_JGLUE_DIR": str(jglue_dir), "OPENAI_API_KEY": "sk-test",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "COLUMNS": "200"}
    for name in ("HYOUKA_STORE_URL", "HYOUKA_CACHE"):
        env.pop(name, None)
    return env


def _agent(store_url: str, queue: str, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from hyouka.cli import app; app()", "agent", "--queue", queue, "--store", store_url,
           "--poll-seconds", "0.1", *extra]
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait(condition: Any, what: str, timeout: float = 180, procs: tuple[subprocess.Popen[bytes], ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for proc in procs:
            assert proc.poll() is None, f"an agent ended while waiting for {what}"
        time.sleep(0.05)


def _specs(url: str, n: int, queue: str, *, limit: int, concurrency: int = 1, first_seed: int = 0,
           cache: bool = True) -> list[Any]:
    options = {"base_url": url, "concurrency": concurrency}
    return [(make_spec(model="openai:echo", model_options=options, tasks="jnli", mode="generate", limit=limit,
                       max_tokens=4, seed=first_seed + i, cache=cache), Placement(queue=queue)) for i in range(n)]


def _throughput(jobs: list[dict[str, Any]]) -> float:
    start = min(j["leased_at"] for j in jobs)
    end = max(j["finished_at"] for j in jobs)
    return len(jobs) / (end - start).total_seconds()


def _run_batch(store_url: str, url: str, env: dict[str, str], tmp: Path, queue: str, n_agents: int, n_jobs: int,
               first_seed: int) -> list[dict[str, Any]]:
    """Start ``n_agents`` idle agents, queue ``n_jobs`` once all are up, wait for every job, stop the agents."""
    logs = [tmp / f"{queue}-{i}.log" for i in range(n_agents)]
    procs = tuple(_agent(store_url, queue, env, log) for log in logs)
    _wait(lambda: all("on queue" in log.read_text(encoding="utf-8") for log in logs), "the agents to start",
          procs=procs)
    queue_ = JobQueue(Store(store_url))
    # the cache off: every job pays its own calls, so the server's count shows any job that ran twice
    submit_all(_specs(url, n_jobs, queue, limit=1, first_seed=first_seed, cache=False), store=store_url)
    _wait(lambda: len(queue_.list(queue=queue, states=["succeeded", "failed"])) == n_jobs, f"{n_jobs} jobs",
          procs=procs)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    codes = [proc.wait(timeout=60) for proc in procs]
    texts = [log.read_text(encoding="utf-8") for log in logs]
    assert codes == [128 + signal.SIGTERM] * n_agents, texts
    assert not any("Traceback" in t for t in texts), texts
    return queue_.list(queue=queue)


def test_four_agents_run_every_job_once_and_near_four_times_as_fast(store_url: str, tmp_path: Path,
                                                                   jglue_dir: Path) -> None:
    stats = ServerStats()
    env = _env(tmp_path / "home", jglue_dir)
    # one call of 0.5 s per job: the work is waiting, so four agents should do nearly four times as much
    with serve_openai(delay_s=0.5, stats=stats) as url:
        solo = _run_batch(store_url, url, env, tmp_path, "solo", 1, 16, first_seed=10_000)
        requests_solo = stats.requests
        many = _run_batch(store_url, url, env, tmp_path, "many", 4, 200, first_seed=0)
    store = Store(store_url)
    queue = JobQueue(store)
    assert all(j["state"] == "succeeded" for j in solo + many), [j["error"] for j in solo + many if j["error"]]
    assert requests_solo == 16 and stats.requests == 16 + 200  # no job ran twice: the cache is off, all are paid
    runs = {r["job_id"]: r for r in store.list_runs()}
    assert len(runs) == 216 and all(r["status"] == "completed" for r in runs.values())
    agents = set()
    for job in many:
        events = queue.events(job["id"])
        leases = [e for e in events if e["event"] == "leased"]
        # one lease per job, never taken over, finished by the agent that leased it
        assert len(leases) == 1 and job["attempts"] == 1, events
        assert [e["agent"] for e in events if e["event"] == "succeeded"] == [leases[0]["agent"]]
        assert job["run_ids"] == [runs[job["id"]]["id"]]
        agents.add(leases[0]["agent"])
    assert len(agents) == 4
    ratio = _throughput(many) / _throughput(solo)
    print(f"\n{store.engine.dialect.name}: 1 agent {_throughput(solo):.2f} jobs/s, 4 agents "
          f"{_throughput(many):.2f} jobs/s, ratio {ratio:.2f}")
    assert ratio >= 3.4, f"4 agents ran {ratio:.2f}x one agent's jobs per second"


def test_an_agent_killed_mid_job_is_taken_over_and_nothing_is_paid_twice(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    env = _env(tmp_path / "home", jglue_dir)
    with serve_openai(delay_s=0.05, stats=stats) as url:
        ((job, _),) = submit_all(_specs(url, 1, "q", limit=300, concurrency=8), store=store_url)
        first = _agent(store_url, "q", env, tmp_path / "killed.log", "--lease-seconds", "3")
        _wait(lambda: stats.requests >= 150, "150 requests", procs=(first,))
        first.kill()
        first.wait(timeout=30)
        killed_at = time.monotonic()
        second = _agent(store_url, "q", env, tmp_path / "second.log", "--lease-seconds", "3", "--until-empty")
        code = second.wait(timeout=300)
        waited = time.monotonic() - killed_at
    log = (tmp_path / "second.log").read_text(encoding="utf-8")
    assert code == 0 and "Traceback" not in log, log
    queue = JobQueue(Store(store_url))
    done = queue.get(job["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    events = [e["event"] for e in queue.events(job["id"])]
    assert events == ["submitted", "leased", "running", "lease expired", "leased", "running", "succeeded"]
    leases = [e for e in queue.events(job["id"]) if e["event"] == "leased"]
    assert leases[0]["agent"] != leases[1]["agent"]
    assert waited >= 2.0  # the job waited for the dead agent's lease to expire
    (run,) = Store(store_url).list_runs()  # the killed agent's run, resumed, not a second one
    assert run["status"] == "completed" and run["job_id"] == job["id"] and done["run_ids"] == [run["id"]]
    assert len(Store(store_url).samples(run["id"])) == 300
    repaid = sum(count - 1 for count in stats.attempts.values() if count > 1)
    # what the cache held unflushed (under 16) plus what was in flight (8) at the kill
    assert repaid <= 32, f"{repaid} calls paid again"


def test_sigterm_hands_the_job_back_and_the_next_agent_finishes_it(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    env = _env(tmp_path / "home", jglue_dir)
    with serve_openai(delay_s=0.1, stats=stats) as url:
        ((job, _),) = submit_all(_specs(url, 1, "q", limit=200, concurrency=8), store=store_url)
        first = _agent(store_url, "q", env, tmp_path / "stopped.log")
        _wait(lambda: stats.requests >= 60, "60 requests", procs=(first,))
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=60)
        log = (tmp_path / "stopped.log").read_text(encoding="utf-8")
        assert code == 128 + signal.SIGTERM and "Traceback" not in log, log
        queue = JobQueue(Store(store_url))
        back = queue.get(job["id"])
        assert back["state"] == "queued" and back["attempts"] == 0 and back["agent"] is None
        assert "SIGTERM" in queue.events(job["id"])[-1]["detail"]
        (stopped,) = Store(store_url).list_runs()
        assert stopped["status"] == "interrupted" and stopped["owner"] is None
        assert len(Store(store_url).finished_indices(stopped["id"])) >= 60 - 8
        second = subprocess.run([sys.executable, "-c", "from hyouka.cli import app; app()", "agent", "--queue", "q",
                                 "--store", store_url, "--until-empty", "--poll-seconds", "0.1"],
                                env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    done = JobQueue(Store(store_url)).get(job["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 1
    (run,) = Store(store_url).list_runs()
    assert run["id"] == stopped["id"] and run["status"] == "completed"
    assert sum(count - 1 for count in stats.attempts.values() if count > 1) <= 8  # the calls in flight at most
