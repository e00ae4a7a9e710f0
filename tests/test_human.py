"""Human studies: studies over real runs, tokens, balanced sampling, recorded sides, gold checks, imports,
ratings and agreement, through the Python API and the CLI."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.evaluation import evaluate, pairwise
from hyouka.evaluation.human import invite, new_study, next_pair, record_vote
from hyouka.evaluation.human_import import import_arena
from hyouka.evaluation.human_results import study_agreement, study_ratings
from hyouka.models.base import Message
from hyouka.store.studies import StudyStore, hash_token
from tests.judge_fakes import ScriptedJudge, prompt_of

runner = CliRunner()

TABLE = pd.DataFrame({
    "question_id": ["q1", "q2", "q3", "q4"],
    "question": ["日本の首都は？", "1+1は？", "富士山の高さは？", "水の化学式は？"],
    "gold": ["東京", "2", "3776m", "H2O"],
    "x": ["東京", "3", "3776m", "CO2"],
    "y": ["大阪", "2", "1000m", "H2O"],
    "z": ["京都", "2", "<script>alert(1)</script>", "H2O"],
})


def _runs(url: str) -> list[str]:
    """Three real benchmark runs (existing predictions scored by exact match) on the same four questions."""
    return [evaluate(None, TABLE, predictions=column, targets="gold", inputs="question", id_column="question_id",
                     metrics="exact_match", store=url, cache=False).run_id for column in ("x", "y", "z")]


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.sqlite'}"


def test_study_over_runs_samples_balanced_pairs_and_records_sides(url: str, tmp_path: Path) -> None:
    runs = _runs(url)
    study = new_study("abc", runs, per_rater=6, raters_per_item=2, store=url)
    assert study["n_items"] == 3 * 4 and len(study["models"]) == 3  # 3 pairs of runs x 4 questions
    tokens = [invite("abc", store=url)[1] for _ in range(3)]
    answers = dict(zip(TABLE["question"], zip(TABLE["x"], TABLE["y"], TABLE["z"], strict=True), strict=True))
    seen_flips = Counter()
    for token in tokens:
        while (shown := next_pair("abc", token, store=url)) is not None:
            assert shown.question in answers and shown.right is not None
            assert {shown.left, shown.right} <= set(answers[shown.question])
            vote = record_vote("abc", token, shown.item_id, "left", store=url)
            # "left" is model A's answer unless the sides were flipped; the vote says which in model terms
            assert vote["flipped"] == shown.flipped and vote["winner"] == ("b" if shown.flipped else "a")
            seen_flips[shown.flipped] += 1
    studies = StudyStore(__import__("hyouka.store.store", fromlist=["Store"]).Store(url))
    votes = studies.votes(studies.get_study("abc")["id"])
    assert len(votes) == 3 * 6  # every rater's quota
    assert max(Counter(v["item_id"] for v in votes).values()) <= 2  # each item shown to at most k raters
    per_pair = Counter((v["model_a"], v["model_b"]) for v in votes)
    assert max(per_pair.values()) - min(per_pair.values()) <= 1  # balanced over the pairs of models
    assert seen_flips[True] > 0 and seen_flips[False] > 0  # sides are randomised
    # the same rater voting again on an item replaces the vote: it counts once
    first = votes[0]
    token = tokens[[r["id"] for r in studies.raters(first["study_id"])].index(first["rater_id"])]
    record_vote("abc", token, first["item_id"], "tie", store=url)
    again = studies.votes(first["study_id"])
    assert len(again) == len(votes) and next(v for v in again if v["id"] == first["id"])["winner"] == "tie"
    with pytest.raises(PermissionError, match="unknown rater token"):
        next_pair("abc", "not-a-token", store=url)
    with pytest.raises(ValueError, match="choice 'up'"):
        record_vote("abc", token, first["item_id"], "up", store=url)
    # tokens are stored hashed, never as they are
    database = (tmp_path / "results.sqlite").read_bytes() + (tmp_path / "results.sqlite-wal").read_bytes()
    assert all(t.encode() not in database for t in tokens)
    assert hash_token(tokens[0]) in {r["token_hash"] for r in studies.raters(first["study_id"])}


def test_studies_refuse_runs_of_different_tasks_and_taken_names(url: str, tmp_path: Path) -> None:
    runs = _runs(url)
    other = evaluate(None, TABLE.head(2), predictions="x", targets="gold", inputs="question", id_column="question_id",
                     metrics="exact_match", store=url, cache=False).run_id
    new_study("taken", runs[:2], store=url)
    with pytest.raises(ValueError, match="exists already"):
        new_study("taken", runs[:2], store=url)
    with pytest.raises(ValueError, match="different tasks"):
        new_study("mixed", [runs[0], other], store=url)
    with pytest.raises(ValueError, match="two different runs"):
        new_study("one", [runs[0]], store=url)


def _gold_file(path: Path) -> Path:
    rows = [{"question": f"gold {k}", "answer_a": "right answer", "answer_b": "wrong answer", "winner": "a"}
            for k in range(3)]
    rows.append({"question": "pick the left-hand or right-hand answer that says PICK ME", "answer_a": "PICK ME",
                 "answer_b": "no", "winner": "a", "kind": "attention"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _vote_on_all(study: str, token: str, url: str, careless: bool) -> None:
    while (shown := next_pair(study, token, store=url)) is not None:
        if shown.left in ("right answer", "wrong answer", "PICK ME", "no"):
            good_side = "left" if shown.left in ("right answer", "PICK ME") else "right"
            choice = ("right" if good_side == "left" else "left") if careless else good_side
        else:
            choice = "left"
        record_vote(study, token, shown.item_id, choice, store=url)


def test_gold_and_attention_checks_flag_careless_raters_and_leave_their_votes_out(url: str, tmp_path: Path) -> None:
    runs = _runs(url)
    new_study("gold", runs, per_rater=12, raters_per_item=2, gold=_gold_file(tmp_path / "gold.jsonl"), gold_every=2,
              store=url)
    _, careful = invite("gold", "careful", store=url)
    _, careless = invite("gold", "careless", store=url)
    _vote_on_all("gold", careful, url, careless=False)
    _vote_on_all("gold", careless, url, careless=True)
    from hyouka.store.store import Store

    studies = StudyStore(Store(url))
    raters = {r["name"]: r for r in studies.raters(studies.get_study("gold")["id"])}
    assert not raters["careful"]["flagged"]
    assert raters["careless"]["flagged"] and "attention" in raters["careless"]["flag_reason"]
    gold_votes = [v for v in studies.votes(studies.get_study("gold")["id"]) if v["gold"]]
    assert {v["rater"] for v in gold_votes} == {"careful", "careless"}  # gold items were served to both
    result = study_ratings("gold", rounds=0, store=url)
    assert result["n_votes"] == 12 and result["n_left_out"] == 12  # the careless rater's real votes
    assert study_ratings("gold", rounds=0, include_flagged=True, store=url)["n_votes"] == 24
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer_a": "x", "answer_b": "y"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing winner"):
        new_study("bad-gold", runs, gold=bad, store=url)


def _write_votes(path: Path, rows: Sequence[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_arena_import_counts_duplicates_once_and_rejects_bad_rows_whole(url: str, tmp_path: Path) -> None:
    rows = [
        {"model_a": "m1", "model_b": "m2", "winner": "model_a", "judge": "u1", "question_id": "q1"},
        {"model_a": "m1", "model_b": "m2", "winner": "model_a", "judge": "u1", "question_id": "q1"},  # duplicate
        {"model_a": "m2", "model_b": "m1", "winner": "tie (bothbad)", "judge": "u2", "question_id": "q1"},
        {"model_a": "m2", "model_b": "m3", "winner": "model_b", "judge": "", "question_id": "q2"},
    ]
    result = import_arena(_write_votes(tmp_path / "arena.csv", rows), store=url)
    assert result == {"study": "arena", "created": True, "rows": 4, "votes": 3, "replaced": 1}
    from hyouka.store.store import Store

    studies = StudyStore(Store(url))
    votes = studies.votes(studies.get_study("arena")["id"])
    flipped = next(v for v in votes if v["rater"] == "u2")
    # shown as m2 (left) vs m1: stored in name order (m1, m2) with the side recorded
    assert (flipped["model_a"], flipped["model_b"], flipped["winner"], flipped["flipped"]) == ("m1", "m2",
                                                                                              "bothbad", True)
    assert import_arena(tmp_path / "arena.csv", store=url)["votes"] == 0  # importing again adds nothing
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"model_a": "m1", "model_b": "m3", "winner": "b"}) + "\n"
                     + json.dumps({"model_a": "m1", "model_b": "m3", "winner": "sideways"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"more.jsonl:2: winner 'sideways'"):
        import_arena(jsonl, study="arena", store=url)
    assert len(studies.votes(studies.get_study("arena")["id"])) == 3  # nothing of the bad file was written


def _fastchat_ratings(votes: list[tuple[str, str, str]]) -> dict[str, float]:
    """FastChat's recipe (battles twice, a tie as one win each way, unpenalised logistic regression)."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    models = sorted({m for v in votes for m in v[:2]})
    index = {m: i for i, m in enumerate(models)}
    doubled = votes + votes
    x = np.zeros((len(doubled), len(models)))
    x[np.arange(len(doubled)), [index[v[0]] for v in doubled]] = math.log(10)
    x[np.arange(len(doubled)), [index[v[1]] for v in doubled]] = -math.log(10)
    y = np.array([v[2] == "model_a" for v in doubled], dtype=float)
    y[: len(votes)][[v[2] == "tie" for v in votes]] = 1.0
    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    unpenalised = {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}
    coef = LogisticRegression(fit_intercept=False, tol=1e-8, max_iter=10_000, **unpenalised).fit(x, y).coef_[0]
    return dict(zip(models, 1000 + 400 * (coef - coef.mean()), strict=True))


def test_cli_import_then_ratings_match_an_independent_fit(url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    strengths = {"ichi": 1150.0, "ni": 1050.0, "san": 1000.0, "yon": 900.0}
    names, r = list(strengths), np.array(list(strengths.values()))
    rows = []
    for n in range(800):
        i, j = rng.choice(4, 2, replace=False)
        p = 1 / (1 + 10 ** ((r[j] - r[i]) / 400))
        winner = "tie" if rng.random() < 0.1 else ("model_a" if rng.random() < p else "model_b")
        rows.append({"model_a": names[i], "model_b": names[j], "winner": winner, "rater": f"u{n}",
                     "question_id": f"q{n}"})
    rows.append(dict(rows[0]))  # a duplicate: one rater, one item, counted once
    path = _write_votes(tmp_path / "votes.csv", rows)
    imported = runner.invoke(app, ["human", "import", "arena", str(path), "--store", url, "--format", "json"])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["votes"] == 800
    shown = runner.invoke(app, ["human", "ratings", "votes", "--store", url, "--format", "json", "--rounds", "300"])
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.stdout)
    reference = _fastchat_ratings([(v["model_a"], v["model_b"], v["winner"]) for v in rows[:800]])
    got = {row["model"]: row for row in result["rows"]}
    assert max(abs(got[m]["rating"] - reference[m]) for m in strengths) < 0.1
    assert [row["model"] for row in result["rows"]] == names  # the known order
    assert all(row["ci_low"] < row["rating"] < row["ci_high"] for row in result["rows"])
    assert sum(row["n_votes"] for row in result["rows"]) == 2 * 800 and result["rows"][0]["rank"] == 1
    table = runner.invoke(app, ["human", "ratings", "votes", "--store", url, "--rounds", "50"])
    assert table.exit_code == 0 and "ichi" in table.stdout and "BT 95%" in table.stdout
    missing = runner.invoke(app, ["human", "ratings", "nope", "--store", url])
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output


def _judged(messages: Sequence[Message]) -> str:
    """A judge that prefers an answer saying "better", and otherwise always the first (a position bias)."""
    prompt = prompt_of(messages)
    first = prompt.split("[アシスタントAの回答の開始]")[1].split("[アシスタントAの回答の終了]")[0]
    second = prompt.split("[アシスタントBの回答の開始]")[1].split("[アシスタントBの回答の終了]")[0]
    if "better" in first:
        return "[[A]]"
    return "[[B]]" if "better" in second else "[[A]]"


def test_agreement_of_people_with_a_pairwise_judge_run_hand_computed(url: str, tmp_path: Path) -> None:
    answers = pd.DataFrame({
        "question_id": ["q1", "q2", "q3", "q4"], "question": ["Q1", "Q2", "Q3", "Q4"],
        "x": ["better", "worse", "same", "worse"], "y": ["worse", "better", "same", "better"],
    })
    judge_run = pairwise([None, None], answers, judge=ScriptedJudge(_judged), predictions=["x", "y"],
                         inputs="question", id_column="question_id", store=url, cache=False).run_id
    # judge: q1 x, q2 y, q3 a tie (it followed the position both times: inconsistent), q4 y
    a, b = "predictions:DataFrame:x", "predictions:DataFrame:y"
    people = [("q1", "model_a", "r1", "math"), ("q1", "model_a", "r2", "math"), ("q2", "model_b", "r1", "math"),
              ("q2", "tie", "r2", "math"), ("q3", "tie", "r1", "writing"), ("q4", "model_a", "r1", "writing")]
    path = _write_votes(tmp_path / "people.csv", [
        {"model_a": a, "model_b": b, "winner": w, "rater": r, "question_id": q, "category": c}
        for q, w, r, c in people])
    assert runner.invoke(app, ["human", "import", "arena", str(path), "--store", url]).exit_code == 0
    result = study_agreement("people", [judge_run], store=url)
    judge_people = result["judge_vs_people"]
    # (judge, person): q1 (a,a) (a,a); q2 (b,b) (b,tie); q3 (tie,tie); q4 (b,a) -> 4 of 6 agree with ties;
    # without ties (b,tie) and (tie,tie) leave: 3 of 4
    assert (judge_people["n"], judge_people["agree"]) == (6, 4)
    assert (judge_people["n_without_ties"], judge_people["agree_without_ties"]) == (4, 3)
    # kappa: judge a2 b3 tie1, people a3 b1 tie2: chance (6 + 3 + 2) / 36; (24 - 11) / (36 - 11) = 13 / 25
    assert judge_people["kappa"] == pytest.approx(13 / 25)
    # alpha (nominal): coincidences o_aa 4, o_bb 2, o_tt 2, o_ab = o_ba 1, o_bt = o_tb 1 over n = 12 (a 5, b 4,
    # tie 3): D_o = 4 / 12, D_e = 2 (20 + 15 + 12) / 132; 1 - D_o / D_e = 25 / 47
    assert judge_people["alpha"] == pytest.approx(25 / 47)
    assert judge_people["per_category"]["math"]["exact"] == pytest.approx(3 / 4)
    assert judge_people["per_category"]["writing"]["exact"] == pytest.approx(1 / 2)
    # people with each other: q1 (a,a) agrees, q2 (b,tie) does not; without ties only q1 remains
    people_people = result["people_vs_people"]
    assert (people_people["n"], people_people["agree"], people_people["n_without_ties"]) == (2, 1, 1)
    assert result["judge_inconsistency_rate"] == pytest.approx(1 / 4)
    shown = runner.invoke(app, ["human", "agreement", "people", "--judge-run", judge_run, "--store", url])
    assert shown.exit_code == 0, shown.output
    assert "inconsistency rate: 0.250" in shown.stdout and "0.667" in shown.stdout
    assert "Cohen's κ" in shown.stdout and "Krippendorff's α" in shown.stdout


def _grade(messages: Sequence[Message]) -> str:
    """A judge grading 5 when the answer is the right one, 2 otherwise."""
    answer = prompt_of(messages).split("## 評価対象の回答\n")[1].split("\n\n## 出力形式")[0]
    return json.dumps({"justification": "採点", "score": 5 if answer in set(TABLE["gold"]) else 2})


def test_cli_rating_study_and_agreement_with_graded_judge_runs(url: str) -> None:
    runs = _runs(url)[:2]  # answers x and y
    made = runner.invoke(app, ["human", "new", "--name", "grades", "--kind", "rating", "--runs", *runs,
                               "--per-rater", "8", "--raters-per-item", "1", "--store", url])
    assert made.exit_code == 0, made.output
    assert "8 items" in made.stdout
    invited = runner.invoke(app, ["human", "invite", "grades", "--rater", "hana", "--store", url])
    assert invited.exit_code == 0, invited.output
    token = invited.stdout.strip().splitlines()[-1]
    assert len(token) >= 30 and "shown this once" in invited.stderr
    truth = dict(zip(TABLE["question"], TABLE["gold"], strict=True))
    given = []
    while (shown := next_pair("grades", token, store=url)) is not None:
        assert shown.kind == "rating" and shown.right is None
        score = 5 if shown.left == truth[shown.question] else (1 if len(given) % 2 else 2)
        record_vote("grades", token, shown.item_id, score=score, store=url)
        given.append(score)
    assert len(given) == 8
    with pytest.raises(ValueError, match="score from 1 to 5"):
        record_vote("grades", token, 1, score=6, store=url)
    graded = [evaluate(None, TABLE, predictions=column, targets="gold", inputs="question", id_column="question_id",
                       metrics="answer_correctness", judge=ScriptedJudge(_grade), store=url, cache=False).run_id
              for column in ("x", "y")]
    result = study_agreement("grades", graded, store=url)
    report = result["judge_vs_people"]
    # the judge gives 5 to right answers, 2 to wrong ones; the person 5 to right ones, 2 or 1 to wrong ones
    wrong = [s for s in given if s != 5]
    assert report["n"] == 8 and report["exact"] == pytest.approx((8 - wrong.count(1)) / 8)
    assert report["within_one"] == 1.0
    ratings = json.loads(runner.invoke(app, ["human", "ratings", "grades", "--store", url, "--format", "json",
                                             "--rounds", "100"]).stdout)
    assert [r["n_votes"] for r in ratings["rows"]] == [4, 4], ratings["rows"]
    assert len({r["model"] for r in ratings["rows"]}) == 2
    shown_cli = runner.invoke(app, ["human", "agreement", "grades", "--judge-run", graded[0], "--judge-run",
                                    graded[1], "--store", url])
    assert shown_cli.exit_code == 0 and "spearman" in shown_cli.stdout


def test_a_study_over_judged_runs_is_named_after_the_answers_not_the_judge(url: str) -> None:
    judged = [evaluate(None, TABLE, predictions=column, targets="gold", inputs="question", id_column="question_id",
                       metrics="answer_correctness", judge=ScriptedJudge(_grade), store=url, cache=False).run_id
              for column in ("x", "y")]
    study = new_study("judged", judged, store=url)
    names = sorted(study["models"])
    assert names == ["predictions:DataFrame:x", "predictions:DataFrame:y"], names
