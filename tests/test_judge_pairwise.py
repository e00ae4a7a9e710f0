"""Pairwise judging with position swap: flips are ties and are reported as inconsistent."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from hyouka.evaluation import pairwise
from hyouka.judge.grading import Judgment
from hyouka.judge.mt_bench.pairwise import run_pairwise
from hyouka.judge.pairwise import combine, win_rates
from hyouka.models.base import Message
from hyouka.models.recorded import RecordedModel
from hyouka.store.store import Store
from tests.judge_fakes import ScriptedJudge, prompt_of


def _j(value: str | None, status: str = "ok") -> Judgment:
    return Judgment(value=value, status=status)


def test_combining_the_two_orders() -> None:
    assert combine(_j("A"), _j("B")).winner == "A"  # A first: A; B first: B (i.e. model A again)
    consistent = combine(_j("B"), _j("A"))
    assert (consistent.winner, consistent.consistent) == ("B", True)
    flip = combine(_j("A"), _j("A"))  # whichever is shown first wins: position bias
    assert (flip.winner, flip.consistent, flip.status) == ("tie", False, "ok")
    assert combine(_j("tie"), _j("tie")).consistent is True
    half = combine(_j("A"), _j("tie"))
    assert (half.winner, half.consistent) == ("tie", False)
    failed = combine(_j("A"), _j(None, "parse_error"))
    assert (failed.winner, failed.status) == (None, "parse_error")
    rates = win_rates([combine(_j("A"), _j("B")), flip, failed])
    assert (rates["n_judged"], rates["n_total"], rates["wins_a"], rates["ties"], rates["inconsistent"]) == (
        2, 3, 1, 1, 1)
    assert rates["win_rate_a"] == 0.75 and rates["win_rate_b"] == 0.25 and rates["inconsistency_rate"] == 0.5


def _answers(messages: Sequence[Message]) -> tuple[str, str]:
    prompt = prompt_of(messages)
    a = re.search(r"\[アシスタントAの回答の開始\]\n(.*?)\n\[アシスタントAの回答の終了\]", prompt, re.DOTALL)
    b = re.search(r"\[アシスタントBの回答の開始\]\n(.*?)\n\[アシスタントBの回答の終了\]", prompt, re.DOTALL)
    assert a and b
    return a.group(1), b.group(1)


@pytest.fixture()
def pairs() -> pd.DataFrame:
    return pd.DataFrame({
        "question": ["日本の首都は？", "1+1は？", "富士山の高さは？", "水の化学式は？"],
        "good": ["正解：東京", "正解：2", "正解：3776m", "正解：H2O"],
        "poor": ["大阪", "3", "1000m", "CO2"],
    })


def test_position_biased_judge_is_reported_inconsistent(pairs: pd.DataFrame, tmp_path: Path) -> None:
    judge = ScriptedJudge(lambda messages: "どちらも良いが、最初の回答が優れている。[[A]]")
    result = pairwise([None, None], pairs, judge=judge, predictions=["good", "poor"],
                      store=f"sqlite:///{tmp_path / 'r.sqlite'}", cache=False)
    assert len(judge.conversations) == 8  # every item judged twice
    seen = {_answers(c) for c in judge.conversations}
    assert ("正解：東京", "大阪") in seen and ("大阪", "正解：東京") in seen  # both orders
    rates = result.win_rates
    assert (rates["wins_a"], rates["wins_b"], rates["ties"], rates["inconsistent"]) == (0, 0, 4, 4)
    assert result.metrics["inconsistency_rate"] == 1.0
    assert result.metrics["win_rate_a"] == result.metrics["win_rate_b"] == 0.5
    assert result.table["consistent"].tolist() == [False] * 4
    assert result.table["verdict_ab"].tolist() == ["A"] * 4 and result.table["verdict_ba"].tolist() == ["A"] * 4
    run = Store(f"sqlite:///{tmp_path / 'r.sqlite'}").get_run(result.run_id)
    assert run["kind"] == "pairwise" and run["config"]["model_a"] == "predictions:DataFrame:good"


def test_a_consistent_judge_gives_clear_wins(pairs: pd.DataFrame, tmp_path: Path) -> None:
    def fair(messages: Sequence[Message]) -> str:
        a, b = _answers(messages)
        return "[[A]]" if a.startswith("正解") else "[[B]]" if b.startswith("正解") else "[[C]]"

    judge = ScriptedJudge(fair)
    result = pairwise([None, None], pairs, judge=judge, predictions=["poor", "good"], cache=False,
                      store=f"sqlite:///{tmp_path / 'r.sqlite'}")
    assert result.win_rates["wins_b"] == 4 and result.win_rates["inconsistent"] == 0
    assert result.metrics["win_rate_b"] == 1.0 and result.metrics["inconsistency_rate"] == 0.0
    assert result.aggregates["win_rate_b"]["n_scored"] == 4
    system = judge.conversations[0][0].content
    assert system.startswith("公平な判断者として行動し") and "[[C]]" in system


def test_unreadable_verdicts_get_one_repair(pairs: pd.DataFrame, tmp_path: Path) -> None:
    def vague(messages: Sequence[Message]) -> str:
        return "[[A]]" if len(messages) > 2 else "甲乙つけがたい"

    judge = ScriptedJudge(vague)
    result = pairwise([None, None], pairs.head(1), judge=judge, predictions=["good", "poor"], cache=False,
                      store=f"sqlite:///{tmp_path / 'r.sqlite'}")
    assert judge.repairs == 2 and len(judge.conversations) == 4
    assert result.table["status"].tolist() == ["ok"] and result.table["consistent"].tolist() == [False]


def test_mt_bench_pairwise_on_recorded_answers(mt_bench_dir: Path, tmp_path: Path) -> None:
    gpt4 = RecordedModel(mt_bench_dir / "model_answer" / "gpt-4.jsonl")
    small = RecordedModel(mt_bench_dir / "model_answer" / "japanese-stablelm-instruct-alpha-7b.jsonl")
    biased = ScriptedJudge(lambda messages: "[[A]]")
    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    result = run_pairwise(gpt4, "recorded:gpt-4", small, "recorded:stablelm", biased, "scripted", store=store,
                          data_dir=mt_bench_dir, limit=4)
    rates = result.extra["win_rates"]
    assert rates["n_total"] == 8 and rates["n_judged"] == 4  # turn 2: the small model answered turn 1 only
    assert rates["inconsistent"] == 4 and rates["ties"] == 4
    assert result.extra["statuses"] == {"ok": 4, "no_answer": 4}
    assert result.aggregates["inconsistency_rate"]["value"] == 1.0
    names = {store.samples(result.run_id)[0]["details"]["judge_prompt_name"]}
    assert names <= {"pair-v2", "pair-math-v1"}

    def longer(messages: Sequence[Message]) -> str:
        text = prompt_of(messages)
        a = text.split("[アシスタントAの回答の開始]")[1].split("[アシスタントAの回答の終了]")[0]
        b = text.split("[アシスタントBの回答の開始]")[1].split("[アシスタントBの回答の終了]")[0]
        return "[[A]]" if len(a) > len(b) else "[[B]]"

    fair = run_pairwise(gpt4, "recorded:gpt-4", small, "recorded:stablelm", ScriptedJudge(longer), "longer",
                        store=store, data_dir=mt_bench_dir, limit=4, turns=[1])
    assert fair.extra["win_rates"]["inconsistent"] == 0
    assert fair.extra["win_rates"]["n_total"] == 4
