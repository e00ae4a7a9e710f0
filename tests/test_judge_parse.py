"""The tolerant judge parser: scores and justifications in the shapes judges really answer in."""

from __future__ import annotations

import pytest

from hyouka.judge.parse import BRACKETS_FIRST, parse_score, parse_verdict


@pytest.mark.parametrize(
    ("text", "score", "reason"),
    [
        ('{"justification": "正解と一致", "score": 5}', 5, "正解と一致"),
        ('```json\n{"理由": "要点が欠けている", "スコア": 3}\n```', 3, "要点が欠けている"),
        ('採点します。\n```\n{"score": "４", "reason": "ほぼ正しい"}\n```', 4, "ほぼ正しい"),
        ("スコア：４\n理由：ほぼ正しいが、単位が抜けている。", 4, "ほぼ正しいが、単位が抜けている。"),
        ("理由：質問に答えていない。\n点数：１", 1, "質問に答えていない。"),
        ("**Score**: 2/5\nReason: mostly wrong", 2, "mostly wrong"),
        ("正解と同じ内容です。評価：［［５］］", 5, None),
        ("Rating: [[3]]", 3, None),
        ("4点", 4, None),
        ("3", 3, None),
        ('{"Justification": "OK", "Score": 4.0}', 4, "OK"),
    ],
)
def test_reads_scores_in_many_shapes(text: str, score: float, reason: str | None) -> None:
    parsed = parse_score(text, (1, 5))
    assert parsed.ok, parsed.error
    assert parsed.value == score
    if reason is not None:
        assert parsed.justification == reason


@pytest.mark.parametrize("text", ["", "   ", None, "よくできています。", "採点できません", '{"justification": "x"}'])
def test_no_score_is_a_parse_error(text: str | None) -> None:
    parsed = parse_score(text, (1, 5))
    assert not parsed.ok
    assert parsed.value is None
    assert parsed.error


def test_out_of_scale_is_an_error_not_clipped() -> None:
    assert parse_score('{"score": 7}', (1, 5)).error == "score 7 is outside the 1-5 scale"
    assert parse_score("評価：[[0]]", (1, 10), BRACKETS_FIRST).error == "score 0 is outside the 1-10 scale"
    assert parse_score("評価：[[10]]", (1, 10), BRACKETS_FIRST).value == 10


def test_mt_bench_reading_takes_the_first_bracketed_rating_like_fastchat() -> None:
    text = "アシスタントの回答は[[8]]点に値する。…評価：[[6]]"
    assert parse_score(text, (1, 10), BRACKETS_FIRST).value == 8
    assert parse_score("評価: [7]", (1, 10), BRACKETS_FIRST).value == 7  # FastChat's backup pattern
    assert parse_score("評価：[[8.5]]", (1, 10), BRACKETS_FIRST).value == 8.5


def test_instructions_echoed_without_digits_do_not_count() -> None:
    assert not parse_score("評価は短い説明から始めます。回答は不十分です。", (1, 5)).ok


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Aの方が正確です。[[A]]", "A"),
        ("両者同等。［［Ｃ］］", "tie"),
        ("最終判定：[[B]]", "B"),
        ('{"winner": "B", "reason": "詳しい"}', "B"),
        ("勝者: 引き分け", "tie"),
        ("最初は[[A]]と思ったが、最終的には[[B]]", "B"),
    ],
)
def test_reads_pairwise_verdicts(text: str, verdict: str) -> None:
    parsed = parse_verdict(text)
    assert parsed.ok, parsed.error
    assert parsed.value == verdict


def test_no_verdict_is_a_parse_error() -> None:
    assert not parse_verdict("どちらも良い回答です。").ok
    assert not parse_verdict("").ok
