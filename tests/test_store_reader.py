"""The SQLite reader (no SQLAlchemy) returns what SQLAlchemy's ORM returns for the same store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import JSON, Boolean, DateTime

import hyouka
from hyouka.store.columns import TABLES
from hyouka.store.errors import RunNotFoundError
from hyouka.store.reader import SQLiteReader, open_store, sqlite_file
from hyouka.store.schema import Base
from hyouka.store.store import Store
from tests.fakes import ScriptedModel


def _kind(column: object) -> str:
    kind = column.type  # type: ignore[attr-defined]
    return ("json" if isinstance(kind, JSON) else "datetime" if isinstance(kind, DateTime)
            else "bool" if isinstance(kind, Boolean) else "plain")


def test_the_column_list_matches_the_schema() -> None:
    # the tables the reader serves (runs, samples, aggregates): a column added there must be added to columns.py
    schema = {t.name: {c.name: _kind(c) for c in t.columns} for t in Base.metadata.sorted_tables if t.name in TABLES}
    assert schema == TABLES


@pytest.fixture()
def filled(tmp_path: Path, jglue_dir: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    for name in ("a", "b"):
        model = ScriptedModel(answer=lambda _: "中立")
        model.name = name
        hyouka.run(model, "jnli", mode="generate", limit=5, data_dir=jglue_dir, store=store, cache=False)
        hyouka.run(model, "jcommonsenseqa", limit=3, data_dir=jglue_dir, store=store, cache=False)
    return store


def test_reads_equal_the_orm_reads(filled: Store) -> None:
    reader = SQLiteReader.for_url(filled.url)
    assert reader is not None and filled._reader is not None
    filled._reader = None  # the store's SQLAlchemy path, as for PostgreSQL
    runs = filled.list_runs()
    assert reader.list_runs() == runs and len(runs) == 4
    assert reader.list_runs(status="completed") == filled.list_runs(status="completed")
    omit = ("config", "versions")  # a listing that needs no run's configuration reads none
    slim = [{k: v for k, v in run.items() if k not in omit} for run in runs]
    assert reader.list_runs(omit=omit) == filled.list_runs(omit=omit) == slim
    assert isinstance(runs[0]["created_at"], type(reader.list_runs()[0]["created_at"]))
    for run in runs:
        assert reader.get_run(run["id"][:5]) == filled.get_run(run["id"][:5]) == run
        assert reader.samples(run["id"]) == filled.samples(run["id"])
        assert reader.samples(run["id"], indices=[2, 0]) == filled.samples(run["id"], indices=[2, 0])
        assert reader.aggregates(run["id"]) == filled.aggregates(run["id"])
    many = list(range(-2000, 3))  # more indices than one query may bind
    assert reader.samples(runs[0]["id"], indices=many) == filled.samples(runs[0]["id"], indices=[0, 1, 2])
    ids = [r["id"] for r in runs]
    assert reader.all_aggregates(ids) == filled.all_aggregates(ids)
    agg = next(iter(reader.aggregates(ids[0]).values()))
    assert agg["higher_is_better"] is True
    with pytest.raises(RunNotFoundError, match="no run 'zzz'"):
        reader.get_run("zzz")
    with pytest.raises(RunNotFoundError, match="matches 4 runs"):
        reader.get_run("")


def test_a_prefix_is_a_prefix_not_a_pattern(filled: Store) -> None:
    reader = SQLiteReader.for_url(filled.url)
    with pytest.raises(RunNotFoundError, match="no run"):
        reader.get_run("%")  # LIKE would match every run


def test_a_column_an_older_store_lacks_reads_as_none(filled: Store) -> None:
    path = sqlite_file(filled.url)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE runs DROP COLUMN error")
    db.commit()
    db.close()
    runs = SQLiteReader.for_url(filled.url).list_runs()
    assert all("error" in r and r["error"] is None for r in runs)


def test_open_store_reads_a_file_without_sqlalchemy_and_creates_a_new_one_with_it(tmp_path: Path) -> None:
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("postgresql://h/db") is None
    assert sqlite_file("sqlite:///x.db?mode=ro") is None
    fresh = open_store(f"sqlite:///{tmp_path / 'new.sqlite'}")
    assert isinstance(fresh, Store) and fresh.list_runs() == []
    assert isinstance(open_store(f"sqlite:///{tmp_path / 'new.sqlite'}"), SQLiteReader)
