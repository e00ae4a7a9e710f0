"""Runs are owned while they execute; failures and interruptions are recorded; resume checks its settings."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.engine.cache import ResponseCache
from hyouka.engine.recorder import ResumeMismatchError, RunBusyError, RunRecorder
from hyouka.models.base import LoglikelihoodRequest
from hyouka.store.schema import RunRow, utcnow
from hyouka.store.store import RunOwnershipError, Store
from tests.fakes import ScriptedModel


def _recorder(store: Store, **overrides: Any) -> RunRecorder:
    options: dict[str, Any] = {"kind": "benchmark", "model": "m", "task": "t", "mode": "generate",
                               "config": {"model": "m", "task": "t"}, "n_samples": 3}
    return RunRecorder(store, **{**options, **overrides})


def _set_owner(store: Store, run_id: str, **values: Any) -> None:
    with store.session() as s, s.begin():
        s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def test_a_live_run_is_refused_to_a_second_recorder(store: Store) -> None:
    first = _recorder(store)
    with pytest.raises(RunBusyError, match=f"run {first.run_id} .*being executed by another process"):
        _recorder(store)
    first.add({"sample_index": 0, "doc_id": "0", "status": "ok"})
    first.finish([], {})
    assert store.get_run(first.run_id)["status"] == "completed" and store.get_run(first.run_id)["owner"] is None
    assert len(store.list_runs()) == 1


def test_a_run_whose_owner_is_gone_is_taken_over_and_the_old_owner_writes_nothing(store: Store) -> None:
    first = _recorder(store)
    # an owner on another host that stopped beating two minutes ago
    _set_owner(store, first.run_id, owner="elsewhere:123:abc", heartbeat_at=utcnow() - timedelta(minutes=2))
    first.owner = "elsewhere:123:abc"
    second = _recorder(store)
    assert second.run_id == first.run_id and second.resumed
    assert store.get_run(first.run_id)["owner"] == second.owner
    with pytest.raises(RunOwnershipError):  # it comes back to life: its writes are refused, none lands
        store.write_samples(first.run_id, [{"sample_index": 0, "doc_id": "0"}], owner=first.owner)
    assert store.samples(first.run_id) == []
    second.finish([], {})


def test_a_run_of_a_dead_process_on_this_host_is_taken_over_at_once(store: Store) -> None:
    first = _recorder(store)
    import socket

    _set_owner(store, first.run_id, owner=f"{socket.gethostname()}:999999999:dead", heartbeat_at=utcnow())
    second = _recorder(store)
    assert second.run_id == first.run_id
    second.finish([], {})


def test_a_failed_flush_marks_the_run_failed_with_the_error(
    jglue_dir: Path, store: Store, cache: ResponseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "write_samples", broken)
    with pytest.raises(sqlite3.OperationalError):
        hyouka.run(ScriptedModel(), "jnli", limit=5, data_dir=jglue_dir, store=store, cache=cache)
    (run,) = store.list_runs()
    assert run["status"] == "failed" and "disk I/O error" in run["error"] and run["owner"] is None


def test_a_failure_while_building_prompts_marks_the_run_failed(
    jglue_dir: Path, store: Store, cache: ResponseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyouka.tasks.task import Task

    def too_long(self: Task, doc: dict[str, Any]) -> str:
        raise ValueError("few-shot prompt longer than the model's context")

    monkeypatch.setattr(Task, "prompt", too_long)
    with pytest.raises(ValueError, match="few-shot"):
        hyouka.run(ScriptedModel(), "jnli", limit=5, data_dir=jglue_dir, store=store, cache=cache)
    (run,) = store.list_runs()
    assert run["status"] == "failed" and "few-shot prompt longer" in run["error"]


def test_the_same_command_completes_a_run_with_failed_samples(
    jglue_dir: Path, store: Store, cache: ResponseCache
) -> None:
    def fail(request: object) -> bool:
        return isinstance(request, LoglikelihoodRequest) and "マザーボード" in request.continuation

    first = hyouka.run(ScriptedModel(fail=fail), "jcommonsenseqa", limit=20, data_dir=jglue_dir, store=store,
                       cache=cache)["jcommonsenseqa"]
    assert first.extra["statuses"].get("api_error")
    again = hyouka.run(ScriptedModel(), "jcommonsenseqa", limit=20, data_dir=jglue_dir, store=store,
                       cache=cache)["jcommonsenseqa"]
    assert again.run_id == first.run_id and again.resumed
    (run,) = store.list_runs()
    assert run["status"] == "completed" and run["stats"]["statuses"] == {"ok": 20}
    # complete now: the same command once more is a new run, answered from the cache
    third = hyouka.run(ScriptedModel(), "jcommonsenseqa", limit=20, data_dir=jglue_dir, store=store, cache=cache)
    assert third["jcommonsenseqa"].run_id != first.run_id and third["jcommonsenseqa"].model_calls == 0


def test_explicit_resume_with_another_prompt_family_is_refused(
    jglue_dir: Path, store: Store, cache: ResponseCache
) -> None:
    killer = ScriptedModel(interrupt_after=20, batch_size=10)
    with pytest.raises(KeyboardInterrupt):
        hyouka.run(killer, "jnli", limit=20, data_dir=jglue_dir, store=store, cache=cache)
    (run,) = store.list_runs()
    with pytest.raises(ResumeMismatchError, match="prompt_family: the run has 'plain', this command 'alpaca'"):
        hyouka.run(ScriptedModel(), "jnli", limit=20, data_dir=jglue_dir, store=store, cache=cache,
                   prompt_family="alpaca", resume=run["id"])
    with pytest.raises(ResumeMismatchError, match="run of task 'jnli'"):
        hyouka.run(ScriptedModel(), "jsts", limit=20, data_dir=jglue_dir, store=store, cache=cache, resume=run["id"])
    assert store.samples(run["id"]) and store.get_run(run["id"])["status"] == "interrupted"
    resumed = hyouka.run(ScriptedModel(), "jnli", limit=20, data_dir=jglue_dir, store=store, cache=cache,
                         resume=run["id"])["jnli"]
    assert resumed.run_id == run["id"] and resumed.aggregates["acc"]["n_total"] == 20


def test_resume_refuses_a_model_whose_identity_changed(
    jglue_dir: Path, store: Store, cache: ResponseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    killer = ScriptedModel(interrupt_after=20, batch_size=10)
    with pytest.raises(KeyboardInterrupt):
        hyouka.run(killer, "jnli", limit=20, data_dir=jglue_dir, store=store, cache=cache)
    (run,) = store.list_runs()

    retrained = ScriptedModel()
    retrained.identity = lambda: {"backend": "scripted", "name": "scripted", "revision": "retrained"}  # type: ignore
    monkeypatch.setattr("hyouka.api.load_model", lambda spec, **options: retrained)
    with pytest.raises(ResumeMismatchError, match="model_identity"):
        hyouka.run("", [], resume=run["id"], store=store, cache=cache)
    assert retrained.calls == []


def _open_fresh_store(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Store(url).list_runs()
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}"[:200])


def test_a_fresh_store_opened_by_many_processes_at_once_never_fails(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    outcomes = []
    for attempt in range(4):
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.sqlite'}"
        barrier, results = context.Barrier(12), context.Queue()
        procs = [context.Process(target=_open_fresh_store, args=(url, barrier, results)) for _ in range(12)]
        for p in procs:
            p.start()
        outcomes += [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join()
    assert [o for o in outcomes if o != "ok"] == []


def test_the_sqlite_store_waits_for_locks_as_long_as_the_cache(store: Store, cache: ResponseCache) -> None:
    with store.engine.connect() as conn:
        store_wait = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    cache_wait = cache._conn.execute("PRAGMA busy_timeout").fetchone()[0]
    assert store_wait == cache_wait == 30000


def test_a_store_of_an_earlier_version_gains_the_owner_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    Store(f"sqlite:///{path}").create_run(model="m", task="t", config={}, config_hash="h", status="interrupted")
    with sqlite3.connect(path) as conn:  # back to the columns an earlier version wrote
        conn.execute("DROP INDEX ux_runs_open_key")
        for column in ("owner", "heartbeat_at", "open_key"):
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    store = Store(f"sqlite:///{path}")
    (run,) = store.list_runs()
    assert run["owner"] is None and run["open_key"] is None
    assert store.find_run("h", unfinished=True)["id"] == run["id"]  # found as an unfinished run still
    recorder = _recorder(store, config={"model": "m"})
    assert recorder.run_id != run["id"]
    recorder.finish([], {})


def test_runs_lists_a_running_run_whose_owner_is_gone(store: Store) -> None:
    recorder = _recorder(store)
    _set_owner(store, recorder.run_id, owner="elsewhere:1:x", heartbeat_at=utcnow() - timedelta(minutes=5))
    recorder._stop_beating()
    result = CliRunner().invoke(app, ["runs", "--store", store.url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "running (owner gone)" in result.stdout
