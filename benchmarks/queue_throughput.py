"""Job queue throughput: 1,000 tiny jobs run by 1, 2, 4 and 8 agent processes, on SQLite and PostgreSQL.

Each job goes the whole way through the queue — leased (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL), marked running, heartbeated, finished, every step an event — by real
:class:`hyouka.jobs.agent.Agent` processes; its work is a sleep of ``--work-ms`` standing for a
model's latency, so the numbers are the queue's, not a model's. Prints jobs/s and the 95th
percentile of the time one lease takes for each count of agents; the ideal is jobs/s growing with
the agents. PostgreSQL is a throwaway server (tests/postgres.py) unless ``--pg-url`` names one. The
last line is ``efficiency_8=<jobs/s with 8 agents / (8 × jobs/s with 1), PostgreSQL>`` (goal ≥ 0.8)
with SQLite's beside it::

    python benchmarks/queue_throughput.py [--jobs 1000] [--work-ms 50] [--agents 1,2,4,8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.postgres starts the throwaway server

from hyouka.jobs.agent import Agent  # noqa: E402
from hyouka.jobs.execute import JobOutcome  # noqa: E402
from hyouka.jobs.resources import Capacity  # noqa: E402
from hyouka.store.queue import JobQueue  # noqa: E402
from hyouka.store.store import Store  # noqa: E402


class _SleepHandle:
    def __init__(self, seconds: float, finished: threading.Event) -> None:
        self._done = False
        self.progress = None

        def work() -> None:
            time.sleep(seconds)
            self._done = True
            finished.set()

        threading.Thread(target=work, daemon=True).start()

    def done(self) -> bool:
        return self._done

    def outcome(self) -> JobOutcome:
        return JobOutcome("succeeded")

    def stop(self) -> None:
        pass


class SleepRunner:
    """Jobs whose work is a sleep (the agent's runner protocol)."""

    def __init__(self, seconds: float) -> None:
        self.capacity = Capacity(0, 1)
        self.seconds = seconds
        self._finished = threading.Event()

    def start(self, job: dict[str, Any], store_url: str) -> _SleepHandle:
        return _SleepHandle(self.seconds, self._finished)

    def wait(self, handles: Any, timeout: float) -> None:
        if not any(h.done() for h in handles):
            self._finished.wait(timeout)
        self._finished.clear()


def _agent(url: str, queue: str, work_s: float, start: Any, out: Any) -> None:
    agent = Agent(Store(url), queue, until_empty=True, poll_seconds=0.02, runner=SleepRunner(work_s),
                  say=lambda _text: None)
    latencies: list[float] = []
    lease = agent.jobs.lease

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        job = lease(*args, **kwargs)
        if job is not None:
            latencies.append(time.perf_counter() - began)
        return job

    agent.jobs.lease = timed  # type: ignore[method-assign]
    start.wait()
    agent.run()
    out.put(latencies)


def trial(url: str, n_agents: int, n_jobs: int, work_s: float) -> tuple[float, float]:
    """(jobs per second, lease p95 in ms) for ``n_agents`` agents emptying a queue of ``n_jobs``."""
    queue_name = f"bench-{uuid.uuid4().hex[:8]}"
    queue = JobQueue(Store(url))
    for i in range(n_jobs):
        queue.submit({"model": "openai:none", "tasks": ["jnli"], "i": i, "q": queue_name}, f"{queue_name}-{i}",
                     queue=queue_name, num_cpus=1.0)
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    procs = [context.Process(target=_agent, args=(url, queue_name, work_s, start, out)) for _ in range(n_agents)]
    for p in procs:
        p.start()
    start.set()
    latencies = [x for _ in procs for x in out.get(timeout=1800)]
    for p in procs:
        p.join()
    jobs = queue.list(queue=queue_name)
    assert len(jobs) == n_jobs and all(j["state"] == "succeeded" for j in jobs), "a job did not succeed"
    assert all(j["attempts"] == 1 for j in jobs), "a job was leased twice"
    span = (max(j["finished_at"] for j in jobs) - min(j["leased_at"] for j in jobs)).total_seconds()
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000 if len(latencies) >= 20 else max(latencies) * 1000
    return n_jobs / span, p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--work-ms", type=float, default=50.0, help="each job's work (a sleep)")
    parser.add_argument("--agents", default="1,2,4,8")
    parser.add_argument("--pg-url", default=None, help="an existing PostgreSQL database instead of a throwaway one")
    args = parser.parse_args()
    counts = [int(n) for n in args.agents.split(",")]
    efficiency: dict[str, float] = {}
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        urls = {"sqlite": f"sqlite:///{Path(tmp) / 'queue.sqlite'}"}
        pg = args.pg_url
        if pg is None:
            from tests import postgres

            reason = postgres.missing()
            if reason:
                print(f"PostgreSQL skipped: {reason}")
            else:
                pg = stack.enter_context(postgres.postgres_server())
        if pg:
            urls["postgresql"] = pg
        for name, url in urls.items():
            rates = {}
            for n in counts:
                rate, p95 = trial(url, n, args.jobs, args.work_ms / 1000)
                rates[n] = rate
                ideal = n * 1000 / args.work_ms
                print(f"{name:10} {n} agent(s): {rate:7.1f} jobs/s (all sleep, no queue: {ideal:6.1f}), "
                      f"lease p95 {p95:6.2f} ms", flush=True)
            top = max(counts)
            efficiency[name] = rates[top] / (top * rates[min(counts)])
    head = efficiency.get("postgresql", float("nan"))
    others = " ".join(f"{k}_efficiency_8={v:.2f}" for k, v in efficiency.items() if k != "postgresql")
    print(f"efficiency_8={head:.2f} {others} jobs={args.jobs} work_ms={args.work_ms:g}")


if __name__ == "__main__":
    main()
