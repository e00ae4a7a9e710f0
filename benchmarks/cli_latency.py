"""Wall time of the read-only commands on a store of 1,000 runs, against ``python -c pass``.

Builds the store once: a few real runs through ``hyouka.run`` (a deterministic stand-in model
on JGLUE JNLI by generation and JCommonsenseQA by log-likelihood, 20 documents each), then
copies of their rows under new ids and model names up to ``--runs`` runs, each with its
samples and aggregates. Then it times, in fresh processes as a user's shell does, the console
script on ``runs``, ``leaderboard``, ``show <id>``, ``tasks`` and ``--help`` (stdout to a pipe), and
``python -c pass`` in the same rounds, interleaved so that a load spike hits both. Each time
is the median over ``--rounds`` of the wall time, and of the CPU time the process used (less
disturbed by a loaded machine); the ratio is a command's median wall over python's. With
``--before SRC`` (another checkout's ``src`` folder) every command is also timed on that code,
interleaved in the same rounds, and ``speedup`` is its median wall over this code's. The last
line prints every command's median seconds and ratios (goal: each command at most 0.3 s wall on
a quiet machine)::

    python benchmarks/cli_latency.py [--data ../shared/data/jglue-v1.3] [--runs 1000] [--rounds 7] [--before SRC]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "jglue-v1.3"


class _StandIn:
    """A deterministic backend: a fixed answer for generation, a hash for log-likelihoods."""

    def __init__(self, name: str) -> None:
        from hyouka.models.base import Capabilities

        self.name = name
        self.capabilities = Capabilities(loglikelihood=True, generate=True, chat=True)

    def identity(self) -> dict[str, Any]:
        return {"backend": "stand-in", "name": self.name}

    def loglikelihood(self, requests: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from hyouka.models.base import Response

        for i, r in enumerate(requests):
            value = -1.0 - (hash((self.name, r.context, r.continuation)) % 97) / 16.0
            yield i, Response(logprob=value, is_greedy=False, prompt_tokens=len(r.context), latency_s=0.01)

    def generate(self, requests: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from hyouka.models.base import Response

        answers = ("含意", "矛盾", "中立")
        for i, r in enumerate(requests):
            text = answers[hash((self.name, r.prompt)) % 3]
            yield i, Response(text=text, prompt_tokens=len(r.prompt), completion_tokens=2, latency_s=0.02)

    def chat(self, requests: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError


def build_store(path: Path, data: Path, n_runs: int) -> str:
    """A SQLite store of ``n_runs`` runs; returns the id of one of them."""
    import hyouka
    from hyouka.store.store import Store

    url = f"sqlite:///{path}"
    store = Store(url)
    for name in ("stand-in-a", "stand-in-b"):
        model = _StandIn(name)
        hyouka.run(model, "jnli", mode="generate", limit=20, data_dir=data, store=store, cache=False)
        hyouka.run(model, "jcommonsenseqa", limit=20, data_dir=data, store=store, cache=False)
    store.close()

    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    templates = [dict(r) for r in db.execute("SELECT * FROM runs")]
    samples = {t["id"]: [dict(r) for r in db.execute("SELECT * FROM samples WHERE run_id = ?", (t["id"],))]
               for t in templates}
    aggregates = {t["id"]: [dict(r) for r in db.execute("SELECT * FROM aggregates WHERE run_id = ?", (t["id"],))]
                  for t in templates}
    for n in range(n_runs - len(templates)):
        template = templates[n % len(templates)]
        run = {**template, "id": uuid.uuid4().hex[:12], "model": f"{template['model']}-{n // len(templates):03d}",
               "config_hash": uuid.uuid4().hex}
        _insert(db, "runs", run)
        for row in samples[template["id"]]:
            _insert(db, "samples", {**row, "id": None, "run_id": run["id"]})
        for row in aggregates[template["id"]]:
            _insert(db, "aggregates", {**row, "id": None, "run_id": run["id"]})
    db.commit()
    run_id = templates[0]["id"]
    db.close()
    return run_id


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def hyouka_command() -> list[str]:
    """The console script a user runs, or its one line when it is not installed."""
    script = shutil.which("hyouka", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from hyouka.cli import app; app()"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd``."""
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return elapsed, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="src folder of the code to compare with")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "results.sqlite"
        started = time.perf_counter()
        run_id = build_store(db, args.data, args.runs)
        print(f"store of {args.runs} runs built in {time.perf_counter() - started:.1f} s")
        env = {**os.environ, "HYOUKA_HOME": tmp, "HYOUKA_STORE_URL": f"sqlite:///{db}", "COLUMNS": "200"}
        envs = {"": env}
        if args.before:
            envs["before "] = {**env, "PYTHONPATH": str(args.before.resolve())}
        hy = hyouka_command()
        commands = {"runs": [*hy, "runs"], "leaderboard": [*hy, "leaderboard"], "show": [*hy, "show", run_id],
                    "tasks": [*hy, "tasks"], "help": [*hy, "--help"]}
        cases = {"python": ([sys.executable, "-c", "pass"], env)}
        for prefix, case_env in envs.items():
            cases.update({prefix + name: (cmd, case_env) for name, cmd in commands.items()})
        for cmd, case_env in cases.values():  # warm the file cache and the bytecode
            timed(cmd, case_env)
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (cmd, case_env) in cases.items():
                w, c = timed(cmd, case_env)
                walls[name].append(w)
                cpus[name].append(c)
    wall_s = {name: statistics.median(values) for name, values in walls.items()}
    cpu_s = {name: statistics.median(values) for name, values in cpus.items()}
    base = wall_s["python"]
    for name in cases:
        print(f"{name:20s} wall {wall_s[name]:.3f} s (min {min(walls[name]):.3f})  cpu {cpu_s[name]:.3f} s  "
              f"x python {wall_s[name] / base:.1f}")
    fields = [f"python_s={base:.3f}"]
    for name in commands:
        fields.append(f"{name}_s={wall_s[name]:.3f} {name}_cpu_s={cpu_s[name]:.3f} "
                      f"{name}_ratio={wall_s[name] / base:.1f}")
        if args.before:
            fields.append(f"{name}_speedup={wall_s['before ' + name] / wall_s[name]:.1f}")
    print(" ".join(fields))


if __name__ == "__main__":
    main()
