"""Ctrl-C to a real `hyouka eval` process: the calls in flight are kept, the same command pays none twice.

The model (or judge) is the local OpenAI-compatible server with a delay, so the run lasts seconds;
the test counts each prompt's arrivals at the server, across the interrupted run and its resumption.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hyouka.store.store import Store
from hyouka.testing.openai_server import EchoModel, ServerStats, serve_openai
from tests.test_run_processes import _env, _paid_twice, _start, _wait_for

pytestmark = pytest.mark.slow
N_ROWS = 120


def _data(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "question", "answer", "prediction"])
        for i in range(N_ROWS):
            writer.writerow([f"q{i}", f"質問 {i}: {i} に 1 を足すと？", str(i + 1), f"{i + 1} です"])
    return path


def _interrupt_and_resume(cmd: list[str], stats: ServerStats, tmp_path: Path, jglue_dir: Path,
                          store_url: str) -> None:
    env = _env(tmp_path / "home", jglue_dir)
    proc = _start(cmd, env, tmp_path / "stopped.log")
    _wait_for(stats, 40, proc)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    log = (tmp_path / "stopped.log").read_text(encoding="utf-8")
    assert code == 130, log
    assert "Traceback" not in log
    (stopped,) = Store(store_url).list_runs()
    assert stopped["status"] == "interrupted" and stopped["owner"] is None
    assert len(Store(store_url).finished_indices(stopped["id"])) < N_ROWS  # stopped mid-run
    asked = stats.requests
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    (run,) = Store(store_url).list_runs()
    assert run["id"] == stopped["id"] and run["status"] == "completed"
    assert len(Store(store_url).samples(run["id"])) == N_ROWS
    assert stats.requests > asked  # the resumption did ask for the rest
    # every prompt reached the server once: those in flight at Ctrl-C were waited for and cached
    assert _paid_twice(stats) == 0, {k: n for k, n in stats.attempts.items() if n > 1}
    assert len(stats.attempts) == N_ROWS


def test_ctrl_c_during_the_answers_pays_no_prompt_twice(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    with serve_openai(delay_s=0.15, stats=stats) as url:
        cmd = [sys.executable, "-c", "from hyouka.cli import app; app()", "eval", str(_data(tmp_path / "qa.csv")),
               "--model", "openai:echo", "--base-url", url, "--inputs-column", "question",
               "--targets-column", "answer", "--metrics", "exact_match", "--max-tokens", "8",
               "--concurrency", "8", "--store", store_url]
        _interrupt_and_resume(cmd, stats, tmp_path, jglue_dir, store_url)


def test_ctrl_c_during_the_judgments_pays_no_prompt_twice(tmp_path: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    with serve_openai(EchoModel("Rating: [[4]]"), model_name="judge", delay_s=0.15, stats=stats) as url:
        cmd = [sys.executable, "-c", "from hyouka.cli import app; app()", "eval", str(_data(tmp_path / "qa.csv")),
               "--predictions-column", "prediction", "--inputs-column", "question", "--targets-column", "answer",
               "--judge", "openai:judge", "--judge-base-url", url, "--metrics", "answer_correctness",
               "--concurrency", "8", "--store", store_url]
        _interrupt_and_resume(cmd, stats, tmp_path, jglue_dir, store_url)
