"""Rater pages and the studies panel through FastAPI's TestClient: tokens, blind sides recorded, votes
written at once, duplicates once, gold flags, rubric, ratings and agreement as the Python API gives them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from hyouka.evaluation import evaluate
from hyouka.evaluation.human import invite, new_study
from hyouka.evaluation.human_results import study_agreement, study_ratings
from hyouka.store.store import Store
from hyouka.store.studies import StudyStore
from hyouka.web.app import create_app
from tests.judge_fakes import ScriptedJudge, prompt_of

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
TABLE = pd.DataFrame({
    "question_id": ["q1", "q2", "q3", "q4"],
    "question": ["日本の首都は？", "1+1は？", "富士山の高さは？", "水の化学式は？"],
    "gold": ["東京", "2", "3776m", "H2O"],
    "x": ["東京です", "3です", "3776mです", "CO2です"],
    "y": ["大阪です", "2です", "1000mです", "H2Oです"],
})
TABLE["z"] = [f"京都 {EVIL}", "**2** です", "三千", "水"]
RIGHT = {"東京です", "3776mです", "2です", "H2Oです"}  # x is right on q1 and q3, y on q2 and q4
ANSWERS = {c: dict(zip(TABLE["question"], TABLE[c], strict=True)) for c in ("x", "y", "z")}


@pytest.fixture()
def site(tmp_path: Path) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    runs = [evaluate(None, TABLE, predictions=c, targets="gold", inputs="question", id_column="question_id",
                     metrics="exact_match", store=url, cache=False).run_id for c in ("x", "y", "z")]
    store = Store(url)
    return {"url": url, "runs": runs, "store": store, "client": TestClient(create_app(store))}


def _shown(html: str) -> dict[str, Any]:
    """The item id, the question and the two answers' text as the page shows them (tags stripped)."""
    item = re.search(r'name="item_id" value="(\d+)"', html)
    parts = {}
    for name in ("question", "answer-left", "answer-right"):
        found = re.search(rf'<div class="md" id="{name}">(.*?)</div>', html, re.S)
        parts[name] = None if found is None else re.sub(r"<[^>]+>", "", found.group(1)).strip()
    return {"item_id": int(item.group(1)) if item else None, **parts}


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_rater_votes_through_the_page_blind_sides_recorded_reload_keeps_them(site: dict[str, Any]) -> None:
    client, store = site["client"], site["store"]
    names = set(new_study("abc", site["runs"], per_rater=12, raters_per_item=1, store=store)["models"])
    assert len(names) == 3
    _, token = invite("abc", "hana", store=store)
    assert client.get("/rate/abc").status_code == 403
    assert client.get("/rate/abc", params={"token": "wrong"}).status_code == 403
    assert client.post("/rate/abc", content="token=wrong&item_id=1&choice=left").status_code == 403
    assert client.get("/rate/nope", params={"token": token}).status_code == 404
    shown_sides, saw_evil = [], False
    for n in range(12):
        page = client.get("/rate/abc", params={"token": token})
        assert page.status_code == 200 and f"{n} / 12 done" in page.text  # a reload shows the votes so far
        assert not any(name in page.text for name in names)  # blind: no model names
        assert "<script>window" not in page.text and "onerror=\"window" not in page.text
        saw_evil |= "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text
        shown = _shown(page.text)
        shown_sides.append((shown, _unescape(shown["answer-left"]), _unescape(shown["answer-right"])))
        voted = client.post("/rate/abc", content=f"token={token}&item_id={shown['item_id']}&choice=left",
                            headers={"content-type": "application/x-www-form-urlencoded"}, follow_redirects=False)
        assert voted.status_code == 303 and voted.headers["location"].startswith("/rate/abc?token=")
    assert saw_evil
    assert "Thank you" in client.get("/rate/abc", params={"token": token}).text
    studies = StudyStore(store)
    study = studies.get_study("abc")
    votes = {v["item_id"]: v for v in studies.votes(study["id"])}
    assert len(votes) == 12
    by_model = {name: name[-1] for name in names}  # predictions:DataFrame:x -> x
    for shown, left, _right in shown_sides:
        vote = votes[shown["item_id"]]
        question = _unescape(shown["question"])
        # "left" won: the model whose answer was on the left, as the store records it (winner, flipped)
        left_model = vote["model_b"] if vote["flipped"] else vote["model_a"]
        assert vote["winner"] == ("b" if vote["flipped"] else "a")
        expected = ANSWERS[by_model[left_model]][question].replace("**", "")  # markdown's bold, as text
        assert left.replace(" ", "") == expected.replace(" ", "")
    assert {v["flipped"] for v in votes.values()} == {True, False}  # 12 items: both sides occur


def test_json_twin_is_blind_and_a_vote_sent_twice_counts_once(site: dict[str, Any]) -> None:
    client, store = site["client"], site["store"]
    new_study("dup", site["runs"][:2], per_rater=3, raters_per_item=2, store=store)
    _, token = invite("dup", store=store)
    first = client.get("/api/rate/dup", params={"token": token}).json()
    assignment = first["assignment"]
    assert first["progress"] == {"study": "dup", "kind": "pairwise", "done": 0, "quota": 3, "rubric": None}
    assert "flipped" not in assignment and "predictions:" not in json.dumps(first)
    body = {"token": token, "item_id": assignment["item_id"], "choice": "tie"}
    assert client.post("/api/rate/dup", json=body).status_code == 200
    again = client.post("/api/rate/dup", json={**body, "choice": "right"}).json()  # a double click, a resend
    assert again["progress"]["done"] == 1
    studies = StudyStore(store)
    (vote,) = studies.votes(studies.get_study("dup")["id"])
    assert vote["winner"] == ("a" if vote["flipped"] else "b")  # the second replaced the first
    skipped = client.post("/api/rate/dup", json={"token": token, "item_id": again["assignment"]["item_id"],
                                                  "choice": "skip"}).json()
    assert skipped["progress"]["done"] == 1 and skipped["assignment"]["item_id"] != again["assignment"]["item_id"]
    assert client.post("/api/rate/dup", json={"token": token, "item_id": 1, "choice": "up"}).status_code == 422
    assert client.post("/api/rate/dup", json={"item_id": 1, "choice": "left"}).status_code == 403


def test_rating_study_shows_the_rubric_and_takes_scores(site: dict[str, Any]) -> None:
    client, store = site["client"], site["store"]
    rubric = "5: 正確で簡潔\n\n1: 誤り <b>bold?</b>"
    new_study("grades", site["runs"][:1], kind="rating", per_rater=4, raters_per_item=1, rubric=rubric, store=store)
    _, token = invite("grades", store=store)
    page = client.get("/rate/grades", params={"token": token}).text
    assert 'id="rubric"' in page and "正確で簡潔" in page and "&lt;b&gt;bold?&lt;/b&gt;" in page
    assert page.count('name="score"') == 5 and 'name="choice" value="left"' not in page
    for score in (5, 4, 2, 1):
        item = _shown(client.get("/rate/grades", params={"token": token}).text)["item_id"]
        client.post("/rate/grades", content=f"token={token}&item_id={item}&score={score}",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    studies = StudyStore(store)
    assert sorted(v["score"] for v in studies.votes(studies.get_study("grades")["id"])) == [1, 2, 4, 5]
    bad = client.post("/api/rate/grades", json={"token": token, "item_id": item, "score": 9})
    assert bad.status_code == 422 and "1 to 5" in bad.json()["detail"]


def test_gold_misses_flag_the_rater_in_the_panel(site: dict[str, Any], tmp_path: Path) -> None:
    client, store = site["client"], site["store"]
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"question": "2+2は？", "answer_a": "4", "answer_b": "5", "winner": "a",
                                "kind": "attention"}, ensure_ascii=False) + "\n", encoding="utf-8")
    new_study("careful", site["runs"][:2], per_rater=4, raters_per_item=1, gold=gold, gold_every=2, store=store)
    _, token = invite("careful", "careless", store=store)
    for _ in range(3):
        page = client.get("/rate/careful", params={"token": token}).text
        shown = _shown(page)
        # always the answer shown on the right: on the attention check, the wrong one (or the right one
        # when the sides are flipped, which is then answered with the other side)
        choice = "right"
        if shown["question"] == "2+2は？":
            choice = "left" if shown["answer-left"] == "5" else "right"
        client.post("/rate/careful", content=f"token={token}&item_id={shown['item_id']}&choice={choice}",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    panel = client.get("/api/studies/careful").json()
    (rater,) = panel["study"]["raters"]
    assert rater["flagged"] and "attention" in rater["flag_reason"] and rater["gold_votes"] == 1
    html = client.get("/studies/careful").text
    assert 'class="flagged"' in html and "attention check" in html


def _grade(messages: Any) -> str:
    """A judge grading 5 the right answers and 2 the others."""
    answer = prompt_of(messages).split("## 評価対象の回答\n")[1].split("\n\n## 出力形式")[0]
    return json.dumps({"justification": "採点", "score": 5 if answer in RIGHT else 2})


def test_panel_shows_the_python_apis_ratings_and_agreement(site: dict[str, Any], tmp_path: Path) -> None:
    client, store, url = site["client"], site["store"], site["url"]
    new_study("panel", site["runs"][:2], per_rater=4, raters_per_item=2, store=store)
    for name in ("r1", "r2"):
        _, token = invite("panel", name, store=store)
        for _ in range(4):
            shown = client.get("/api/rate/panel", params={"token": token}).json()["assignment"]
            wanted = "left" if shown["left"] in RIGHT else "right"  # the right answer wins
            client.post("/api/rate/panel", json={"token": token, "item_id": shown["item_id"], "choice": wanted})
    graded = [evaluate(None, TABLE, predictions=c, targets="gold", inputs="question", id_column="question_id",
                       metrics="answer_correctness", judge=ScriptedJudge(_grade), store=url, cache=False).run_id
              for c in ("x", "y")]
    response = client.get("/api/studies/panel", params={"judge_run": ",".join(graded)})
    assert response.status_code == 200, response.text
    panel = response.json()
    assert panel["ratings"] == study_ratings("panel", rounds=1000, store=store)
    assert panel["agreement"] == study_agreement("panel", graded, store=store)
    assert panel["agreement"]["judge_vs_people"]["exact"] == 1.0  # judge and people prefer the right answers
    assert {r["n_votes"] for r in panel["ratings"]["rows"]} == {8}
    assert panel["agreement"]["judge_vs_people"]["alpha"] is not None
    html = client.get("/studies/panel", params={"judge_run": graded}).text
    assert "Krippendorff" in html and "Cohen" in html and 'id="winrates"' in html and 'id="ratings"' in html
    listed = client.get("/api/studies").json()["studies"]
    assert [s["study"] for s in listed] == ["panel"]
    assert client.get("/studies").status_code == 200 and client.get("/api/studies/nope").status_code == 404


def test_side_by_side_of_eval_runs_names_the_judged_models_and_shows_the_judge(site: dict[str, Any]) -> None:
    client, url = site["client"], site["url"]
    graded = [evaluate(None, TABLE, predictions=c, targets="gold", inputs="question", id_column="question_id",
                       metrics="answer_correctness", judge=ScriptedJudge(_grade), store=url, cache=False).run_id
              for c in ("x", "y", "z")]
    listed = client.get("/compare", params={"task": "eval:DataFrame"}).text
    assert "predictions:DataFrame:x" in listed and listed.count('type="checkbox"') == 6  # 3 heuristic + 3 judged
    data = client.get("/api/compare", params={"runs": graded, "limit": 10}).json()
    assert [r["subject"] for r in data["runs"]] == [f"predictions:DataFrame:{c}" for c in "xyz"]
    assert data["total"] == 4
    first = data["items"][0]["answers"][0]
    assert first["judgments"]["answer_correctness"] == {"score": 5.0, "justification": "採点", "status": "ok"}
    # x right on q1 and q3, y on q2 and q4: x scores higher than y exactly where x is right
    better = client.get("/api/compare", params={"runs": graded[:2], "only": "a_better",
                                                "metric": "answer_correctness"}).json()
    assert [i["doc_id"] for i in better["items"]] == ["q1", "q3"]
    page = client.get("/compare", params={"runs": graded}).text
    assert "A · predictions:DataFrame:x" in page and "採点" in page and "&lt;script&gt;window" in page
    assert "<script>window" not in page
    other = evaluate(None, TABLE.head(2), predictions="x", targets="gold", inputs="question", id_column="question_id",
                     metrics="exact_match", store=url, cache=False).run_id
    refused = client.get("/api/compare", params={"runs": [graded[0], other]})
    assert refused.status_code == 422 and "same examples" in refused.json()["detail"]


def _prefer_right(messages: Any) -> str:
    """A pairwise judge preferring the right answer (the first shown when both or neither are right)."""
    prompt = prompt_of(messages)
    first = prompt.split("[アシスタントAの回答の開始]")[1].split("[アシスタントAの回答の終了]")[0].strip()
    second = prompt.split("[アシスタントBの回答の開始]")[1].split("[アシスタントBの回答の終了]")[0].strip()
    return "[[B]]" if second in RIGHT and first not in RIGHT else "[[A]]"


def test_agreement_with_a_pairwise_judge_over_dataframe_predictions(site: dict[str, Any]) -> None:
    """Studies and pairwise judge runs built from DataFrame columns name the models alike, so votes match;
    a pairwise run stored under the older short names still matches."""
    from typer.testing import CliRunner

    from hyouka.cli import app
    from hyouka.evaluation import pairwise

    client, store, url = site["client"], site["store"], site["url"]
    new_study("frames", site["runs"][:2], per_rater=4, raters_per_item=1, store=store)
    _, token = invite("frames", "r1", store=store)
    for _ in range(4):
        shown = client.get("/api/rate/frames", params={"token": token}).json()["assignment"]
        wanted = "left" if shown["left"] in RIGHT else "right"
        client.post("/api/rate/frames", json={"token": token, "item_id": shown["item_id"], "choice": wanted})
    judged = pairwise([None, None], TABLE, judge=ScriptedJudge(_prefer_right), predictions=["x", "y"],
                      inputs="question", id_column="question_id", store=url, cache=False)
    assert (judged.model_a, judged.model_b) == ("predictions:DataFrame:x", "predictions:DataFrame:y")
    panel = client.get("/api/studies/frames", params={"judge_run": judged.run_id}).json()["agreement"]
    assert (panel["judge_vs_people"]["n"], panel["judge_vs_people"]["agree"]) == (4, 4)
    shown = CliRunner().invoke(app, ["human", "agreement", "frames", "--judge-run", judged.run_id, "--store", url,
                                     "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["judge_vs_people"]["n"] == 4
    run = store.get_run(judged.run_id)  # as an earlier version stored it: predictions:<column>
    store.update_run(judged.run_id, config={**run["config"], "model_a": "predictions:x", "model_b": "predictions:y"})
    assert study_agreement("frames", [judged.run_id], store=store)["judge_vs_people"]["n"] == 4
