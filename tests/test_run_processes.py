"""Real `hyouka run` processes against the local OpenAI-compatible server: collisions, kill -9, SIGTERM.

Each test starts the server (an echo model with a delay, so a run lasts seconds) in this
process and the commands as subprocesses, then reads the server's request counts and the store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyouka.store.store import Store
from hyouka.testing.openai_server import ServerStats, serve_openai

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[1] / "src"


def _command(url: str, store_url: str, limit: int, concurrency: int = 8) -> list[str]:
    return [
        sys.executable, "-c", "from hyouka.cli import app; app()", "run",
        "--model", "openai:echo", "--base-url", url, "--tasks", "jnli", "--mode", "generate",
        "--max-tokens", "4", "--limit", str(limit), "--concurrency", str(concurrency), "--store", store_url,
    ]


def _env(home: Path, jglue_dir: Path) -> dict[str, str]:
    env = {**os.environ, "HYOUKA_HOME": str(home), "HYOUKA_JGLUE_DIR": str(jglue_dir), "OPENAI_API_KEY": "sk-test",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "COLUMNS": "200"}
    env.pop("HYOUKA_STORE_URL", None)
    env.pop("HYOUKA_CACHE", None)
    return env


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait_for(stats: ServerStats, n: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while stats.requests < n:
        assert proc.poll() is None, "the run ended before it was stopped"
        assert time.monotonic() < deadline, f"only {stats.requests} requests arrived"
        time.sleep(0.02)


def _paid_twice(stats: ServerStats) -> int:
    return sum(count - 1 for count in stats.attempts.values() if count > 1)


def test_two_identical_commands_at_once_make_one_run(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    env = _env(tmp_path / "home", jglue_dir)
    with serve_openai(delay_s=0.3, stats=stats) as url:
        cmd = _command(url, store_url, limit=48, concurrency=4)
        procs = [_start(cmd, env, tmp_path / f"run{i}.log") for i in range(2)]
        codes = [p.wait(timeout=300) for p in procs]
    logs = [(tmp_path / f"run{i}.log").read_text(encoding="utf-8") for i in range(2)]
    assert not any("Traceback" in log for log in logs), logs
    assert sorted(codes) == [0, 2], logs  # one ran it, the other refused
    refused = logs[codes.index(2)]
    assert "is being executed by another process" in " ".join(refused.split()), refused
    (run,) = Store(store_url).list_runs()
    assert run["status"] == "completed" and run["owner"] is None
    samples = Store(store_url).samples(run["id"])
    assert sorted(s["sample_index"] for s in samples) == list(range(48))
    # each distinct prompt asked once (the first 48 JNLI documents hold one prompt twice: sent once, shared)
    assert _paid_twice(stats) == 0 and stats.requests == len(stats.attempts) >= 47


def test_kill_9_pays_again_only_for_a_few_answers(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    env = _env(tmp_path / "home", jglue_dir)
    with serve_openai(delay_s=0.05, stats=stats) as url:
        cmd = _command(url, store_url, limit=300)
        proc = _start(cmd, env, tmp_path / "killed.log")
        _wait_for(stats, 150, proc)
        proc.kill()
        proc.wait(timeout=30)
        first = stats.requests
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    (run,) = Store(store_url).list_runs()  # the killed run, taken over (its process is gone) and completed
    assert run["status"] == "completed"
    assert len(Store(store_url).samples(run["id"])) == 300
    repaid = _paid_twice(stats)
    # what the cache held unflushed (under 16) plus what was in flight (8) at the kill
    assert repaid <= 32, f"{repaid} of {first} calls paid again"


def test_sigterm_interrupts_and_the_same_command_finishes(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    env = _env(tmp_path / "home", jglue_dir)
    with serve_openai(delay_s=0.1, stats=stats) as url:
        cmd = _command(url, store_url, limit=200)
        proc = _start(cmd, env, tmp_path / "stopped.log")
        _wait_for(stats, 60, proc)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log = (tmp_path / "stopped.log").read_text(encoding="utf-8")
        assert code == 128 + signal.SIGTERM, log
        assert "Traceback" not in log
        (stopped,) = Store(store_url).list_runs()
        assert stopped["status"] == "interrupted" and "SIGTERM" in stopped["error"]
        assert stopped["owner"] is None
        kept = Store(store_url).finished_indices(stopped["id"])
        assert len(kept) >= 60 - 8  # everything answered before the signal, less what was in flight
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    (run,) = Store(store_url).list_runs()
    assert run["id"] == stopped["id"] and run["status"] == "completed"
    assert len(Store(store_url).samples(run["id"])) == 200
    assert _paid_twice(stats) <= 8  # at most the calls in flight when the signal came
