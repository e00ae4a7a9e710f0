"""Rubrics as data: built-in ja/en rubrics, custom rubric files, and the prompts rendered from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyouka.judge.metrics import BUILTIN_JUDGE_METRICS, MissingInputError, answer_correctness, judge_metric
from hyouka.judge.rubric import RubricError, builtin_rubric_names, load_rubric
from hyouka.metrics.text import japanese_char_ratio


def test_every_builtin_metric_has_a_rubric_in_japanese_and_english() -> None:
    assert sorted(BUILTIN_JUDGE_METRICS) == builtin_rubric_names()
    for name in BUILTIN_JUDGE_METRICS:
        ja, en = load_rubric(name, "ja"), load_rubric(name, "en")
        assert (ja.name, en.name) == (name, name)
        assert ja.scale == en.scale == (1, 5)
        assert sorted(ja.levels) == sorted(en.levels) == [1, 2, 3, 4, 5]
        assert ja.inputs == en.inputs
        assert japanese_char_ratio(ja.criteria) > 0.8  # written in Japanese
        assert japanese_char_ratio(en.criteria) < 0.05
        assert ja.content_hash() != en.content_hash()


def test_rubrics_show_the_judge_only_their_inputs() -> None:
    assert load_rubric("answer_relevance").inputs == ["question", "answer"]
    assert load_rubric("faithfulness").inputs == ["context", "answer"]
    assert load_rubric("answer_similarity").inputs == ["answer", "ground_truth"]
    assert set(load_rubric("relevance").inputs) == {"question", "context", "answer"}
    call = judge_metric("faithfulness").call(
        {"question": "秘密の質問", "answer": "回答本文", "context": "文脈本文", "ground_truth": "正解本文"})
    prompt = call.messages[-1].content
    assert "文脈本文" in prompt and "回答本文" in prompt
    assert "秘密の質問" not in prompt and "正解本文" not in prompt


def test_japanese_prompt_is_japanese_and_asks_for_a_score_and_justification() -> None:
    call = answer_correctness().call({"question": "日本の首都は？", "answer": "東京", "ground_truth": "東京都"})
    system, user = call.messages
    assert system.role == "system"
    assert "## 質問\n日本の首都は？" in user.content
    assert "## 正解（参照回答）\n東京都" in user.content
    assert "5点：" in user.content and "1点：" in user.content
    assert '"justification"' in user.content and '"score"' in user.content
    assert call.tags == {"metric": "answer_correctness"}
    assert call.parse('{"justification": "一致", "score": 5}').value == 5
    assert "1から5" in call.repair("no score")  # type: ignore[misc]


def test_a_missing_input_is_reported_not_sent() -> None:
    with pytest.raises(MissingInputError, match="ground_truth"):
        answer_correctness().call({"question": "q", "answer": "a", "ground_truth": None})
    # an empty answer is still an answer the judge can grade
    assert answer_correctness().call({"question": "q", "answer": "", "ground_truth": "g"}).messages


def test_custom_rubric_file(tmp_path: Path) -> None:
    path = tmp_path / "politeness.yaml"
    path.write_text(
        "name: politeness\nversion: '2'\nlanguage: ja\ntitle: 丁寧さ\ninputs: [question, answer]\nscale: [1, 3]\n"
        "criteria: 回答が丁寧な日本語で書かれているか。\nlevels: {3: 丁寧, 2: 普通, 1: 失礼}\n",
        encoding="utf-8",
    )
    metric = judge_metric(str(path))
    assert metric.name == "politeness" and metric.rubric.scale == (1, 3)
    assert metric.describe()["version"] == "2"
    call = metric.call({"question": "q", "answer": "a"})
    assert "1から3までの整数" in call.messages[-1].content
    assert call.parse('{"score": 3}').value == 3
    assert not call.parse('{"score": 4}').ok  # outside this rubric's scale


def test_invalid_rubrics_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: '1'\ntitle: t\ninputs: [question]\ncriteria: c\nlevels: {1: a}\n")
    with pytest.raises(RubricError, match="answer"):
        load_rubric(bad)
    with pytest.raises(RubricError, match="no built-in rubric"):
        load_rubric("helpfulness")
    with pytest.raises(RubricError, match="language 'fr'"):
        load_rubric("answer_correctness", "fr")
