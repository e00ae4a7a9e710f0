"""The dashboard through FastAPI's TestClient: JSON twins, SQL filters and paging, the token, the headers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hyouka.cli import app as cli
from tests.web_store import EVIL_TASK, LIMIT, PAYLOAD, build_store, check_repeated_document_ids

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from hyouka.web.app import create_app
from hyouka.web.security import CSP


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, jglue_dir: Path) -> dict[str, Any]:
    return build_store(tmp_path_factory.mktemp("web"), jglue_dir)


@pytest.fixture(scope="module")
def client(filled: dict[str, Any]) -> TestClient:
    return TestClient(create_app(filled["store"]))


def test_leaderboard_json_has_each_model_with_the_accuracy_of_its_answers(filled: dict[str, Any],
                                                                         client: TestClient) -> None:
    tables = client.get("/api/leaderboard").json()["tables"]
    jglue = next(t for t in tables if t["suite"] == "jglue")
    cells = {row["model"]: row["cells"]["jnli"] for row in jglue["rows"]}
    golds = filled["golds"]
    # the answer each model always gives, against the gold labels read from the data file
    expected = {"ScriptedModel:entail-model": "entailment", "ScriptedModel:evil-model": "contradiction",
                "CutModel:cut-model": "neutral"}
    for model, label in expected.items():
        assert cells[model]["value"] == pytest.approx(sum(g == label for g in golds) / LIMIT)
        assert cells[model]["n_scored"] == cells[model]["n_total"] == LIMIT
        assert cells[model]["ci_low"] <= cells[model]["value"] <= cells[model]["ci_high"]
    row = jglue["rows"][0]
    assert row["total_tokens"] > 0 and row["latency_p50"] == pytest.approx(0.02)
    assert {c["task"] for c in jglue["columns"]} >= {"jnli"}
    other = next(t for t in tables if t["title"] == "other tasks")
    assert other["tasks"] == [EVIL_TASK]


def test_leaderboard_page_escapes_the_task_name(client: TestClient) -> None:
    page = client.get("/leaderboard")
    assert page.status_code == 200
    assert EVIL_TASK not in page.text and "jnli&lt;script&gt;window.__pwned=4&lt;/script&gt;" in page.text


def test_runs_filter_in_sql_and_page(filled: dict[str, Any], client: TestClient) -> None:
    everything = client.get("/api/runs").json()
    assert everything["total"] == 4 and len(everything["items"]) == 4
    by_model = client.get("/api/runs", params={"model": "ScriptedModel:evil-model"}).json()
    assert [r["id"] for r in by_model["items"]] == [filled["runs"]["evil"]]
    by_task = client.get("/api/runs", params={"task": "jnli", "status": "completed"}).json()
    assert by_task["total"] == 3
    assert client.get("/api/runs", params={"status": "failed"}).json()["total"] == 0
    page = client.get("/api/runs", params={"limit": 2, "offset": 3}).json()
    assert page["total"] == 4 and len(page["items"]) == 1
    first = everything["items"][0]
    assert first["config_hash"] and first["task_hash"] and "python" in first["versions"]
    assert client.get("/api/runs", params={"limit": 0}).status_code == 422
    html = client.get("/runs", params={"model": "CutModel:cut-model"}).text
    assert filled["runs"]["cut"] in html and filled["runs"]["evil"] not in html


def test_samples_filters_match_the_gold_labels(filled: dict[str, Any], client: TestClient) -> None:
    run_id, golds = filled["runs"]["entail"], filled["golds"]
    url = f"/api/runs/{run_id}/samples"
    right = client.get(url, params={"correct": "correct"}).json()
    wrong = client.get(url, params={"correct": "incorrect"}).json()
    assert right["metric"] == "acc"
    assert [s["sample_index"] for s in right["items"]] == [i for i, g in enumerate(golds) if g == "entailment"]
    assert right["total"] + wrong["total"] == LIMIT
    assert all(s["reference"] != "entailment" for s in wrong["items"])
    page = client.get(url, params={"limit": 5, "offset": LIMIT - 2}).json()
    assert page["total"] == LIMIT and [s["sample_index"] for s in page["items"]] == [LIMIT - 2, LIMIT - 1]
    assert client.get(url, params={"status": "api_error"}).json()["total"] == 0
    assert client.get(url, params={"correct": "maybe"}).status_code == 422
    assert client.get("/api/runs/nosuchrun/samples").status_code == 404


def test_text_search_reads_prompt_and_output(filled: dict[str, Any], client: TestClient) -> None:
    samples = filled["store"].samples(filled["runs"]["entail"])
    # a word of the third document's premise, as the user would type it (wildcards are literal)
    word = samples[2]["doc"]["sentence1"][:6]
    expected = [s["sample_index"] for s in samples if word in s["prompt"]]
    found = client.get(f"/api/runs/{filled['runs']['entail']}/samples", params={"q": word}).json()
    assert [s["sample_index"] for s in found["items"]] == expected and 0 < len(expected) < LIMIT
    evil = client.get(f"/api/runs/{filled['runs']['evil']}/samples", params={"q": "ONERROR"}).json()
    assert evil["total"] == LIMIT and evil["items"][0]["output"].endswith(PAYLOAD)
    assert client.get(f"/api/runs/{filled['runs']['evil']}/samples", params={"q": "100%"}).json()["total"] == 0


def test_sample_cut_at_max_tokens_is_marked(filled: dict[str, Any], client: TestClient) -> None:
    cut = client.get(f"/api/runs/{filled['runs']['cut']}/samples").json()["items"]
    plain = client.get(f"/api/runs/{filled['runs']['entail']}/samples").json()["items"]
    assert all(s["truncated"] for s in cut) and not any(s["truncated"] for s in plain)
    html = client.get(f"/runs/{filled['runs']['cut']}").text
    assert html.count("cut at max_tokens") == 20  # one marker per sample of the first page (20 a page)
    html = client.get(f"/runs/{filled['runs']['cut']}", params={"offset": 20}).text
    assert html.count("cut at max_tokens") == LIMIT - 20 and "← previous" in html and "next →" not in html


def test_run_detail_page_escapes_model_output(filled: dict[str, Any], client: TestClient) -> None:
    html = client.get(f"/runs/{filled['runs']['evil']}").text
    assert "<script>window" not in html and "onerror=\"window" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_secrets_in_a_run_config_never_reach_the_page(filled: dict[str, Any], client: TestClient) -> None:
    store = filled["store"]
    run_id = store.create_run(model="m", task="t", config={"api_key": "sk-live-secret",
                                                             "base_url": "https://u:pw@host/v1?key=sk-q"},
                              config_hash="h", status="failed")
    try:
        for url in ("/api/runs", f"/api/runs/{run_id}", "/runs"):
            body = client.get(url).text
            assert "sk-live-secret" not in body and "sk-q" not in body and ":pw@" not in body
    finally:
        store.delete_run(run_id)
    config = client.get(f"/api/runs/{filled['runs']['entail']}").json()["run"]["config"]
    assert "max_tokens" in config and config["max_tokens"] != "[redacted]"  # a count, not a credential


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for url in ("/leaderboard", "/api/runs", "/static/app.js", "/static/style.css", "/nope"):
        response = client.get(url)
        assert response.headers["content-security-policy"] == CSP, url
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP and "img-src 'self' data:" in CSP
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_with_a_token_every_request_without_it_gets_401(filled: dict[str, Any]) -> None:
    guarded = TestClient(create_app(filled["store"], token="s3cret"))
    for url in ("/leaderboard", "/api/runs", f"/api/runs/{filled['runs']['entail']}/samples", "/mt-bench",
                "/api/mt-bench", "/studies", "/api/studies", "/charts"):
        assert guarded.get(url).status_code == 401, url
    # the package's assets and the rater pages (which check a rater token of their own) need no dashboard token
    assert guarded.get("/static/app.js").status_code == 200 and guarded.get("/fonts.css").status_code == 200
    assert guarded.get("/rate/nosuchstudy", params={"token": "s3cret"}).status_code == 404
    assert guarded.get("/api/runs", headers={"X-Hyouka-Token": "wrong"}).status_code == 401
    assert guarded.get("/api/runs", headers={"X-Hyouka-Token": "s3cret"}).status_code == 200
    assert guarded.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    # ?token= sets the cookie and drops itself from the address
    first = guarded.get("/runs?token=s3cret&status=completed", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/runs?status=completed"
    assert "httponly" in first.headers["set-cookie"].lower()
    assert guarded.get("/runs").status_code == 200  # the cookie now carries it
    assert "s3cret" not in guarded.get("/runs").text


def test_a_remote_bind_without_token_is_refused(filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYOUKA_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--store", filled["store"].url])
    assert result.exit_code == 2 and "--token" in result.output
    from hyouka.web.security import check_bind

    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, None)
    with pytest.raises(ValueError, match="HYOUKA_TOKEN"):
        check_bind("192.168.1.5", None)
    check_bind("0.0.0.0", "t")


def test_the_cli_imports_no_web_framework_until_serve() -> None:
    code = "import sys, hyouka.cli; print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_side_by_side_aligns_three_models_and_filters_disagreement(filled: dict[str, Any], client: TestClient) -> None:
    runs, golds = filled["runs"], filled["golds"]
    three = [runs["entail"], runs["evil"], runs["cut"]]
    every = client.get("/api/compare", params={"runs": three, "limit": 50}).json()
    assert every["total"] == LIMIT and every["paired"] is None
    first = every["items"][0]
    assert [a["output"].split()[0] for a in first["answers"]] == ["含意", "矛盾", "中立"]
    assert all(a["doc_id"] == first["doc_id"] for a in first["answers"])
    # three different constant answers disagree everywhere; one run twice never does
    assert client.get("/api/compare", params={"runs": three, "only": "disagree"}).json()["total"] == LIMIT
    same = client.get("/api/compare", params={"runs": [runs["entail"]], "only": "disagree"}).json()
    assert same["total"] == 0
    # A (always entailment) right and B (always neutral) wrong: exactly the entailment documents
    a_b = client.get("/api/compare", params={"runs": [runs["entail"], runs["cut"]], "only": "a_right_b_wrong"}).json()
    docs = [s["doc_id"] for s in filled["store"].samples(runs["entail"])]
    assert [i["doc_id"] for i in a_b["items"]] == [d for d, g in zip(docs, golds, strict=True) if g == "entailment"]
    # two runs: the paired difference of `hyouka compare`, B − A, from the gold labels
    acc = next(m for m in a_b["paired"]["metrics"] if m["metric"] == "acc")
    assert acc["diff"] == pytest.approx((golds.count("neutral") - golds.count("entailment")) / LIMIT)
    assert acc["ci_low"] <= acc["diff"] <= acc["ci_high"] and acc["n_pairs"] == LIMIT


def test_side_by_side_refuses_runs_of_different_tasks(filled: dict[str, Any], client: TestClient) -> None:
    mixed = client.get("/api/compare", params={"runs": [filled["runs"]["entail"], filled["runs"]["evil_task"]]})
    assert mixed.status_code == 422 and "one task" in mixed.json()["detail"]
    lone = client.get("/api/compare", params={"runs": [filled["runs"]["entail"]], "only": "a_right_b_wrong"})
    assert lone.status_code == 422 and "two runs" in lone.json()["detail"]
    assert client.get("/api/compare", params={"runs": ["nosuchrun"]}).status_code == 404
    page = client.get("/compare", params={"task": "jnli"})
    assert page.status_code == 200 and page.text.count('type="checkbox"') == 3


def test_leaderboard_follows_runs_that_finish_after_it_was_built(tmp_path: Path, jglue_dir: Path) -> None:
    import hyouka
    from hyouka.store.store import Store
    from tests.fakes import ScriptedModel

    store = Store(f"sqlite:///{tmp_path / 'live.sqlite'}")
    live = TestClient(create_app(store))
    assert live.get("/api/leaderboard").json()["tables"] == []
    hyouka.run(ScriptedModel(answer=lambda _: "中立"), "jnli", mode="generate", limit=5, data_dir=jglue_dir,
               store=store, cache=False)
    rows = live.get("/api/leaderboard").json()["tables"][0]["rows"]
    assert [r["model"] for r in rows] == ["ScriptedModel:scripted"]
    run_id = rows[0]["cells"]["jnli"]["run_id"]
    store.set_aggregates(run_id, [{"metric": "acc", "value": 0.125, "n_scored": 5, "n_total": 5}])  # rescored
    assert live.get("/api/leaderboard").json()["tables"][0]["rows"][0]["cells"]["jnli"]["value"] == 0.125


def test_paired_difference_is_offered_not_forced_on_large_runs(filled: dict[str, Any], client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import hyouka.web.app as web_app

    monkeypatch.setattr(web_app, "PAIRED_AUTO_MAX", 10)  # these runs of 30 samples count as large
    two = [filled["runs"]["entail"], filled["runs"]["cut"]]
    assert client.get("/api/compare", params={"runs": two}).json()["paired"] is None
    assert 'id="paired-link"' in client.get("/compare", params={"runs": two}).text
    asked = client.get("/api/compare", params={"runs": two, "paired": "true"}).json()
    assert asked["paired"]["n_pairs"] == LIMIT


def test_charts_are_served_as_png_by_the_app(client: TestClient) -> None:
    pytest.importorskip("matplotlib")
    listed = client.get("/api/charts").json()
    keys = [c["key"] for c in listed["charts"]]
    assert listed["error"] is None and {"metrics", "latency", "quality_latency"} <= set(keys)
    image = client.get(f"/charts/{keys[0]}.png")
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")
    assert client.get("/charts/nope.png").status_code == 404


def test_runs_filter_by_creation_date(filled: dict[str, Any], client: TestClient) -> None:
    from datetime import date, timedelta

    today = date.today()  # the runs were made just now (UTC; allow the day either side)
    around = client.get("/api/runs", params={"since": str(today - timedelta(days=1)),
                                             "until": str(today + timedelta(days=1))}).json()
    assert around["total"] == 4
    assert client.get("/api/runs", params={"since": str(today + timedelta(days=2))}).json()["total"] == 0
    assert client.get("/api/runs", params={"until": str(today - timedelta(days=2))}).json()["total"] == 0
    page = client.get("/runs", params={"since": str(today + timedelta(days=2))})
    assert page.status_code == 200 and "0 runs" in page.text and 'type="date"' in page.text
    assert client.get("/runs", params={"since": "yesterday"}).status_code == 422


def test_run_detail_filters_by_score_range(filled: dict[str, Any], client: TestClient) -> None:
    run_id, golds = filled["runs"]["entail"], filled["golds"]
    url = f"/api/runs/{run_id}/samples"
    ones = client.get(url, params={"metric": "acc", "min": 0.5}).json()
    zeros = client.get(url, params={"metric": "acc", "max": 0.5}).json()
    assert ones["total"] == golds.count("entailment") and zeros["total"] == LIMIT - ones["total"]
    assert client.get(url, params={"metric": "acc", "min": 0, "max": 1}).json()["total"] == LIMIT
    assert client.get(url, params={"metric": "acc", "min": 1, "max": 0}).status_code == 422
    html = client.get(f"/runs/{run_id}", params={"metric": "acc", "min": "1"}).text
    assert f"{golds.count('entailment')} samples match" in html and 'name="min" value="1"' in html
    assert client.get(f"/runs/{run_id}", params={"min": "high"}).status_code == 422


def test_the_leaderboards_cost_and_latency_are_its_runs_calls(filled: dict[str, Any], tmp_path: Path) -> None:
    """Read from the calls alone (a fraction of each sample), priced at serve time; checked by hand from the samples."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  ScriptedModel:entail-model: {input: 2.0, output: 10.0}\n", encoding="utf-8")
    tables = TestClient(create_app(filled["store"], prices=str(prices))).get("/api/leaderboard").json()["tables"]
    row = next(r for r in tables[0]["rows"] if r["model"] == "ScriptedModel:entail-model")
    calls = [c for s in filled["store"].samples(filled["runs"]["entail"]) for c in s["responses"]]
    assert row["n_calls"] == len(calls) == LIMIT
    assert row["total_tokens"] == sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    assert row["cost_usd"] == pytest.approx(sum(c["prompt_tokens"] * 2 + c["completion_tokens"] * 10
                                                for c in calls) / 1e6)
    latencies = sorted(c["latency_s"] for c in calls)
    assert row["latency_p50"] == pytest.approx((latencies[14] + latencies[15]) / 2)
    other = next(r for r in tables[0]["rows"] if r["model"] == "ScriptedModel:evil-model")
    assert other["cost_usd"] is None  # unpriced


def test_fonts_are_the_reports(client: TestClient) -> None:
    from hyouka.report.fonts import FONT_STACK, japanese_font_path

    css = client.get("/fonts.css")
    assert css.headers["content-type"].startswith("text/css") and FONT_STACK in css.text
    report_template = (Path(create_app.__code__.co_filename).parents[1] / "report" / "templates"
                       / "report.html.j2").read_text(encoding="utf-8")
    assert "font-family: {{ font_stack }}" in report_template  # one stack for both
    font = client.get("/fonts/ipaexg.ttf")
    if japanese_font_path() is None:
        assert font.status_code == 404 and "@font-face" not in css.text
    else:
        assert font.status_code == 200 and font.content == japanese_font_path().read_bytes()
        assert "url('/fonts/ipaexg.ttf')" in css.text


def test_a_store_written_before_the_doc_index_gains_it(tmp_path: Path) -> None:
    import sqlite3

    from hyouka.store.store import Store

    path = tmp_path / "old.sqlite"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX ix_samples_run_doc")
    Store(f"sqlite:///{path}").close()  # opened again: the index that side by side reads is made
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = " ".join(str(r) for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM samples WHERE run_id = 'r' AND doc_id IN ('a', 'b')"))
    assert "ix_samples_run_doc" in names and "ix_samples_run_doc" in plan


def test_side_by_side_counts_a_repeated_document_id_once(tmp_path: Path) -> None:
    check_repeated_document_ids(f"sqlite:///{tmp_path / 'dup.sqlite'}")
