"""Shared fixtures: paths to the real data in ../shared/data and a tiny model built at test time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HYOUKA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def jglue_dir(shared_data: Path) -> Path:
    """JGLUE v1.3 in the upstream ``datasets/`` layout."""
    return shared_data / "jglue-v1.3"


@pytest.fixture(scope="session")
def mt_bench_dir(shared_data: Path) -> Path:
    return shared_data / "japanese-mt-bench"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, jglue_dir: Path) -> Path:
    """A randomly initialised Llama with a byte-level BPE tokenizer trained on JGLUE train text."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from hyouka.testing.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-llama")
    return build_tiny_model(out, corpus_dir=jglue_dir, arch="llama", seed=0)


@pytest.fixture(scope="session")
def vllm_server(request: pytest.FixtureRequest):
    """A real vLLM server for the tiny model, started once per session (about a minute on 2 cores).

    Skips, loudly, only where vLLM is not installed; a vLLM that is installed but fails to start fails.
    """
    import time

    from hyouka.testing.vllm_server import VllmServer, vllm_missing

    reason = vllm_missing()
    if reason:
        pytest.skip(f"VLLM NOT INSTALLED, real-server tests skipped: {reason}")
    server = VllmServer(request.getfixturevalue("tiny_model_dir"))  # built only once vLLM is known to be there
    server.start()
    print(f"\nvLLM server started in {server.startup_s:.1f} s at {server.url}")
    started = time.perf_counter()
    try:
        yield server
    finally:
        server.stop()
        print(f"\nvLLM server used for {time.perf_counter() - started:.1f} s, then stopped")


@pytest.fixture()
def store(tmp_path: Path):
    """An empty results store in a temporary SQLite file."""
    from hyouka.store.store import Store

    return Store(f"sqlite:///{tmp_path / 'results.sqlite'}")


@pytest.fixture()
def cache(tmp_path: Path):
    """An empty response cache in a temporary SQLite file."""
    from hyouka.engine.cache import ResponseCache

    return ResponseCache(tmp_path / "cache.sqlite")


@pytest.fixture()
def hyouka_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty results store and cache for one test."""
    home = tmp_path / "hyouka-home"
    monkeypatch.setenv("HYOUKA_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """A real PostgreSQL server for one test module (tests/postgres.py), or a skip saying why there is none."""
    from tests import postgres

    reason = postgres.missing()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with postgres.postgres_server() as url:
        yield url
