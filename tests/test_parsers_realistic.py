"""Parsers against outputs that models and judges really write: Japanese, full-width digits, markdown.

Each table's first rows are the regressions of issue 10 item 6 (they read wrong before: the
expected value is stated by hand from the text, never from the parser).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import hyouka
from hyouka.engine.rescore import rescore
from hyouka.judge.parse import BRACKETS_FIRST, parse_score, parse_verdict
from hyouka.models.base import Response
from hyouka.store.store import Store
from hyouka.tasks.extract import extract_number
from hyouka.tasks.registry import load_task
from hyouka.tasks.task import Task, choice_logprobs
from tests.fakes import ScriptedModel

JSTS_RANGE = (0.0, 5.0)


# -- JSTS: the number a model answers ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # regressions: the search restarted inside a number ("3.5" read as "5", "12" as "2")
        ("類似度3.5", 3.5),
        ("約3.5", 3.5),
        ("文12と文13の類似度は4", 4.0),
        ("約2.5です", 2.5),
        # plain answers, as the prompt asks
        ("3.2", 3.2),
        ("4", 4.0),
        ("０．８", 0.8),
        ("３．５\n", 3.5),
        ("5.0", 5.0),
        ("0", 0.0),
        # labelled, in Japanese or markdown
        ("類似度：４．２", 4.2),
        ("類似度は3.0です。", 3.0),
        ("**類似度: 1.5**", 1.5),
        ("スコア=2", 2.0),
        ("答え：3.8", 3.8),
        ("文１と文２の類似度：３．５", 3.5),
        ("文1と文2の類似度は4", 4.0),
        # numbers that name or count something, scales and ranges echoed from the instruction
        ("2つの文の類似度は3", 3.0),
        ("5段階で4", 4.0),
        ("4/5", 4.0),
        ("0.0〜5.0のうち2.5", 2.5),
        ("0.0～5.0で評価すると４．２です", 4.2),
        ("0-5の範囲で3", 3.0),
        ("文1と文2はほぼ同じ意味なので4.5", 4.5),
        # no answer in range
        ("7", None),
        ("類似度は高い", None),
        ("", None),
        ("1.2.3", None),
    ],
)
def test_jsts_number_extraction(text: str, expected: float | None) -> None:
    assert extract_number(text, JSTS_RANGE)[1] == expected


def test_jsts_run_reads_whole_numbers(jglue_dir: Path, store: Store) -> None:
    """Through the runner: a model that answers "類似度3.5" is scored 3.5, not 5.0."""
    result = hyouka.run(ScriptedModel(answer=lambda prompt: "類似度3.5"), "jsts", limit=4, data_dir=jglue_dir,
                        store=store, cache=False)
    samples = store.samples(result["jsts"].run_id)
    assert [s["prediction"] for s in samples] == [3.5] * 4
    assert all(s["status"] == "ok" for s in samples)


# -- judge scores -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # regression: a citation marker was read before the keyed score
        ("回答は資料[2]と一致する。スコア: 4", 4.0),
        ("回答は資料[1]と資料[3]に基づいている。\n評価：５", 5.0),
        ("The answer follows the source text[2]. Score: 3", 3.0),
        # JSON, fenced or bare, keys in English or Japanese, full-width values
        ('{"score": 4, "justification": "ほぼ正しい"}', 4.0),
        ('```json\n{"スコア": "３", "理由": "要点が欠けている"}\n```', 3.0),
        ('以下が評価です。\n```json\n{\n  "評価": 2,\n  "コメント": "誤りがある"\n}\n```', 2.0),
        # keyed, markdown and Japanese forms
        ("**スコア**: 4\n**理由**: 正確", 4.0),
        ("### スコア\n4", 4.0),
        ("スコアは4です。", 4.0),
        ("点数：５点", 5.0),
        ("評価：5点中4点", 4.0),
        ("評価は5段階で4", 4.0),
        ("Score: **3** out of 5", 3.0),
        ("総合評価: 4/5", 4.0),
        ("Rating: [[4]]", 4.0),
        ("評価：［４］", 4.0),
        ("4点", 4.0),
        ("5", 5.0),
        # none, or off the scale
        ("回答は資料[2]と一致する。", None),
        ("評価できません。", None),
        ("スコア: 9", None),
    ],
)
def test_judge_score_parsing(text: str, expected: float | None) -> None:
    parsed = parse_score(text, (1, 5))
    assert parsed.value == expected, parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("資料[2]のとおり正確。Rating: [[7]]", 7.0),
        ("資料[2]のとおり正確。評価：[8]", 8.0),  # FastChat's backup [N]; the glued [2] is a citation
        ("The assistant cites source[3] correctly.\n\nRating: [[6]]", 6.0),
        ("評価：［［９］］", 9.0),
        ("Rating: [5]", 5.0),
    ],
)
def test_mt_bench_rating_skips_citations(text: str, expected: float) -> None:
    assert parse_score(text, (1, 10), BRACKETS_FIRST).value == expected


# -- pairwise verdicts ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # regressions: the A of "Assistant" and the B of "Both" were read as verdicts
        ("Winner: Assistant B", "B"),
        ('{"winner": "Assistant B"}', "B"),
        ('{"winner": "Assistant A", "reason": "more detailed"}', "A"),
        ("Verdict: Both answers are good.", None),
        ("Verdict: Both answers are good, but [[B]] is more accurate.", "B"),
        ("Winner: Assistant B is clearly better", "B"),
        # FastChat marks, full-width, last one counts
        ("[[A]]", "A"),
        ("アシスタントBの方が詳しい。［［Ｂ］］", "B"),
        ("両者に大差はない。[[C]]", "tie"),
        ("最初は[[A]]と思ったが、最終判定は[[B]]", "B"),
        # keyed, in Japanese and markdown
        ("**勝者**: アシスタントA", "A"),
        ("勝者：アシスタントＢ", "B"),
        ("判定: Bの方が良い", "B"),
        ("結論：引き分け", "tie"),
        ("Final verdict: model_b", "B"),
        ("Verdict: tie", "tie"),
        ('```json\n{"verdict": "[[A]]", "explanation": "正確"}\n```', "A"),
        ('{"勝者": "B"}', "B"),
        # none
        ("どちらも良い回答です。", None),
        ("Winner: Assistants are equally helpful", None),
    ],
)
def test_pairwise_verdict_parsing(text: str, expected: str | None) -> None:
    parsed = parse_verdict(text)
    assert parsed.value == expected, parsed
    assert parsed.ok == (expected is not None)


# -- NaN log-likelihoods: scored the same live and by `hyouka score` -----------------------
class NaNFirstChoiceModel(ScriptedModel):
    """A backend whose log-likelihood of JNLI's first choice (含意) is NaN, as a broken kernel returns."""

    def loglikelihood(self, requests):  # type: ignore[no-untyped-def]
        for index, response in super().loglikelihood(requests):
            if requests[index].continuation.strip() == "含意":
                response = Response(logprob=math.nan, is_greedy=False, prompt_tokens=response.prompt_tokens)
            yield index, response


def test_nan_logprob_is_the_least_likely_live_and_on_rescore(jglue_dir: Path, store: Store) -> None:
    result = hyouka.run(NaNFirstChoiceModel(), "jnli", limit=20, data_dir=jglue_dir, store=store, cache=False)
    run_id = result["jnli"].run_id
    live = store.samples(run_id)
    assert all(s["prediction"] != 0 for s in live)  # a NaN choice is never the answer
    live_acc = result["jnli"].aggregates["acc"]["value"]
    rescored = rescore(store, run_id)
    again = store.samples(run_id)
    assert [s["prediction"] for s in again] == [s["prediction"] for s in live]
    assert rescored["acc"]["value"] == live_acc


def test_choice_logprobs_read_nan_and_null_alike() -> None:
    task = Task(load_task("jnli"))
    doc = {"_id": "x", "sentence1": "a", "sentence2": "b", "label": "neutral"}
    assert choice_logprobs([Response(logprob=math.nan), Response(logprob=None), Response(logprob=-3.0)]) == [
        -math.inf, -math.inf, -3.0]
    for first in (math.nan, None):
        responses = [Response(logprob=first), Response(logprob=-2.0), Response(logprob=-1.0)]
        assert task.score(doc, "loglikelihood", responses).prediction == 2
    none_finite = task.score(doc, "loglikelihood", [Response(logprob=math.nan)] * 3)
    assert none_finite.prediction is None and none_finite.status == "format_error"
    assert "finite" in (none_finite.error or "")
