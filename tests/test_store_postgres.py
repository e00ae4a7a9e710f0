"""The store on a real PostgreSQL server: concurrent creation, run owners, one open run per configuration."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import hyouka
from hyouka.engine.recorder import RunBusyError, RunRecorder
from hyouka.store.schema import RunRow, utcnow
from hyouka.store.store import RunOwnershipError, Store
from tests import postgres
from tests.fakes import ScriptedModel

pytestmark = pytest.mark.slow


@pytest.fixture()
def pg_url(pg_server: str) -> str:
    """A new, empty database on the server."""
    return postgres.new_database(pg_server)


def _open(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Store(url).list_runs()
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}"[:200])


def _claim(url: str, barrier: Any, results: Any) -> None:
    store = Store(url)
    barrier.wait()
    try:
        recorder = RunRecorder(store, kind="benchmark", model="m", task="t", mode="generate",
                               config={"model": "m"}, n_samples=1)
        results.put(("owner", recorder.run_id))
    except RunBusyError:
        results.put(("busy", None))
    except Exception as exc:
        results.put((f"{type(exc).__name__}: {exc}"[:200], None))


def _in_processes(target: Any, url: str, n: int) -> list[Any]:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(n), context.Queue()
    procs = [context.Process(target=target, args=(url, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    return out


def test_a_fresh_postgres_store_opened_by_many_processes_at_once(pg_url: str) -> None:
    assert _in_processes(_open, pg_url, 8) == ["ok"] * 8


def test_of_processes_opening_one_configuration_at_once_one_owns_it(pg_url: str) -> None:
    Store(pg_url)
    outcomes = _in_processes(_claim, pg_url, 6)
    owners = [run for what, run in outcomes if what == "owner"]
    assert len(owners) == 1 and sorted(what for what, _ in outcomes) == ["busy"] * 5 + ["owner"], outcomes
    assert [r["id"] for r in Store(pg_url).list_runs()] == owners


def test_a_stale_owner_is_taken_over_and_its_writes_are_refused(pg_url: str) -> None:
    store = Store(pg_url)
    options: dict[str, Any] = {"kind": "benchmark", "model": "m", "task": "t", "mode": "generate",
                               "config": {"model": "m"}, "n_samples": 1}
    first = RunRecorder(store, **options)
    first._stop_beating()
    with pytest.raises(RunBusyError):
        RunRecorder(store, **options)
    with store.session() as s, s.begin():
        s.execute(update(RunRow).where(RunRow.id == first.run_id)
                  .values(owner="elsewhere:1:x", heartbeat_at=utcnow() - timedelta(minutes=3)))
    second = RunRecorder(store, **options)
    assert second.run_id == first.run_id
    with pytest.raises(RunOwnershipError):
        store.write_samples(first.run_id, [{"sample_index": 0, "doc_id": "0"}], owner="elsewhere:1:x")
    second.add({"sample_index": 0, "doc_id": "0", "status": "ok"})
    second.finish([], {})
    run = store.get_run(first.run_id)
    assert run["status"] == "completed" and run["owner"] is None and run["open_key"] is None
    assert len(store.samples(first.run_id)) == 1


def test_a_benchmark_run_on_postgres_resumes_after_an_interruption(pg_url: str, jglue_dir: Path) -> None:
    store = Store(pg_url)
    with pytest.raises(KeyboardInterrupt):
        hyouka.run(ScriptedModel(interrupt_after=20, batch_size=10), "jnli", limit=20, data_dir=jglue_dir,
                   store=store, cache=False)
    (stopped,) = store.list_runs()
    assert stopped["status"] == "interrupted" and stopped["owner"] is None and stopped["open_key"]
    result = hyouka.run(ScriptedModel(), "jnli", limit=20, data_dir=jglue_dir, store=store, cache=False)["jnli"]
    assert result.run_id == stopped["id"] and result.resumed
    assert store.get_run(stopped["id"])["status"] == "completed"
