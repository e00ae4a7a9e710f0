"""Calls paid again after ``kill -9``: the response cache's flush cadence against the old one, in one run.

Serves the echo model on 127.0.0.1 with a delay (``--delay`` s per answer, 8 requests in flight),
starts ``hyouka run`` (JNLI generation, ``--limit`` documents) in a subprocess, kills it with
SIGKILL once the server has seen ``k`` requests, runs the same command again to completion,
and counts the prompts the server answered twice. Each kill point is tried with the cache as
it is (a flush every 16 answers and 0.5 s after an answer) and as it was (256 answers or 1 s,
checked only when an answer arrives). The last line prints ``max_repaid=<now> mean_repaid=<now>
old_max_repaid=<before> in_flight=8``::

    python benchmarks/kill_repaid.py [--data ../shared/data/jglue-v1.3] [--kills 100,250,400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hyouka.testing.openai_server import ServerStats, serve_openai

REPO = Path(__file__).resolve().parents[1]
OLD_CADENCE = "import hyouka.engine.cache as c; c._FLUSH_ROWS = 256; c._FLUSH_SECONDS = 1.0; c._TIMED_FLUSH = False\n"


def trial(data: Path, kill_at: int, limit: int, delay: float, old: bool) -> int:
    stats = ServerStats()
    with tempfile.TemporaryDirectory() as tmp, serve_openai(delay_s=delay, stats=stats) as url:
        env = {**os.environ, "HYOUKA_HOME": tmp, "OPENAI_API_KEY": "sk-bench",
               "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        prelude = OLD_CADENCE if old else ""
        cmd = [sys.executable, "-c", prelude + "from hyouka.cli import app; app()", "run", "--model", "openai:echo",
               "--base-url", url, "--tasks", "jnli", "--mode", "generate", "--max-tokens", "4", "--limit",
               str(limit), "--concurrency", "8", "--data-dir", str(data)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while stats.requests < kill_at:
            if proc.poll() is not None:
                raise SystemExit(f"the run ended after {stats.requests} requests, before the kill at {kill_at}")
            time.sleep(0.005)
        proc.kill()
        proc.wait()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return sum(count - 1 for count in stats.attempts.values() if count > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "jglue-v1.3")
    parser.add_argument("--kills", default="100,250,400")
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    points = [int(k) for k in args.kills.split(",")]
    now = [trial(args.data, k, args.limit, args.delay, old=False) for k in points]
    before = [trial(args.data, k, args.limit, args.delay, old=True) for k in points]
    for k, a, b in zip(points, now, before, strict=True):
        print(f"kill after {k} requests: paid again {a} (old cadence: {b})")
    print(f"max_repaid={max(now)} mean_repaid={statistics.mean(now):.1f} old_max_repaid={max(before)} in_flight=8")


if __name__ == "__main__":
    main()
