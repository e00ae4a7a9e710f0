"""The dashboard's SQL filters, paging and side by side on a real PostgreSQL server (JSON metrics, search)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import postgres
from tests.web_store import LIMIT, PAYLOAD, build_store, check_repeated_document_ids

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


def test_new_queries_on_postgres(pg_filled: dict[str, Any], mt_bench_dir: Path) -> None:
    """Date and score filters, the leaderboard's calls read alone, MT-Bench means in SQL, a rater's vote."""
    from datetime import date, timedelta

    from fastapi.testclient import TestClient

    import hyouka
    from hyouka.evaluation.human import invite, new_study
    from hyouka.report.views import load_views
    from hyouka.web.app import create_app

    store, runs, golds = pg_filled["store"], pg_filled["runs"], pg_filled["golds"]
    client = TestClient(create_app(store))
    today = date.today()
    assert client.get("/api/runs", params={"since": str(today - timedelta(days=1))}).json()["total"] == 4
    assert client.get("/api/runs", params={"until": str(today - timedelta(days=2))}).json()["total"] == 0
    ones = client.get(f"/api/runs/{runs['entail']}/samples", params={"metric": "acc", "min": 0.5}).json()
    assert ones["total"] == golds.count("entailment")
    light = {v.id: v for v in load_views(store, [runs["entail"]], calls_only=True)}
    full = {v.id: v for v in load_views(store, [runs["entail"]])}
    assert light[runs["entail"]].accounting == full[runs["entail"]].accounting
    hyouka.run(f"recorded:{mt_bench_dir / 'model_answer' / 'jslma-7b-ja-orca-6k-3ep.jsonl'}", "ja_mt_bench",
               judge=f"recorded:{mt_bench_dir / 'model_judgment' / 'gpt-4_single.jsonl'}", data_dir=mt_bench_dir,
               limit=4, store=store, cache=False)
    (model,) = client.get("/api/mt-bench").json()["models"]
    first = model["categories"][0]
    assert first["turn_1"]["n_scored"] == 4 and first["turn_1"]["mean"] == pytest.approx(model["turn_1"]["value"])
    new_study("pg-ab", [runs["entail"], runs["cut"]], per_rater=2, store=store)
    _, token = invite("pg-ab", store=store)
    shown = client.get("/api/rate/pg-ab", params={"token": token}).json()["assignment"]
    after = client.post("/api/rate/pg-ab", json={"token": token, "item_id": shown["item_id"], "choice": "left"})
    assert after.json()["progress"]["done"] == 1
    assert client.get("/api/studies/pg-ab").json()["study"]["n_votes"] == 1
    check_repeated_document_ids(store.url)
