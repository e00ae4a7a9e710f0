"""The dashboard's SQL filters, paging and side by side on a real PostgreSQL server (JSON metrics, search)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import postgres
from tests.web_store import LIMIT, PAYLOAD, build_store

pytestmark = pytest.mark.slow
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def pg_filled(tmp_path_factory: pytest.TempPathFactory, jglue_dir: Path) -> Iterator[dict[str, Any]]:
    reason = postgres.missing()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with postgres.postgres_server() as url:
        filled = build_store(tmp_path_factory.mktemp("web_pg"), jglue_dir, url=url)
        yield filled
        filled["store"].close()


def test_filters_and_side_by_side_on_postgres(pg_filled: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from hyouka.web.app import create_app

    client, runs, golds = TestClient(create_app(pg_filled["store"])), pg_filled["runs"], pg_filled["golds"]
    assert client.get("/api/runs", params={"task": "jnli", "status": "completed"}).json()["total"] == 3
    url = f"/api/runs/{runs['entail']}/samples"
    right = client.get(url, params={"correct": "correct"}).json()
    assert [s["sample_index"] for s in right["items"]] == [i for i, g in enumerate(golds) if g == "entailment"]
    assert client.get(url, params={"correct": "incorrect"}).json()["total"] == LIMIT - right["total"]
    evil = client.get(f"/api/runs/{runs['evil']}/samples", params={"q": "OnError", "limit": 5, "offset": 25}).json()
    assert evil["total"] == LIMIT and len(evil["items"]) == 5 and evil["items"][0]["output"].endswith(PAYLOAD)
    assert client.get(url, params={"q": "100%"}).json()["total"] == 0
    three = [runs["entail"], runs["evil"], runs["cut"]]
    assert client.get("/api/compare", params={"runs": three, "only": "disagree"}).json()["total"] == LIMIT
    a_b = client.get("/api/compare", params={"runs": [runs["entail"], runs["cut"]], "only": "a_right_b_wrong"}).json()
    assert a_b["total"] == golds.count("entailment")
    tables = client.get("/api/leaderboard").json()["tables"]
    assert len(tables[0]["rows"]) == 3
    assert client.get("/leaderboard").status_code == 200 and client.get(f"/runs/{runs['cut']}").status_code == 200
