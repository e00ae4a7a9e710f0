"""hyouka.evaluate: data in any format, Japanese-correct heuristic metrics, judge metrics, store and resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

import hyouka
from hyouka.evaluation.data import DataError, load_table
from hyouka.judge.metrics import answer_relevance
from hyouka.models.base import Message
from hyouka.store.store import Store
from tests.fakes import ScriptedModel
from tests.judge_fakes import ScriptedJudge, prompt_of

ROWS = [
    {"id": "q1", "question": "日本の首都はどこですか？", "ground_truth": "東京", "answer": "東京"},
    {"id": "q2", "question": "富士山の高さは？", "ground_truth": ["3776メートル", "3,776m"],
     "answer": "３７７６メートル"},
    {"id": "q3", "question": "光の速さは？", "ground_truth": "秒速約30万キロメートル", "answer": "わかりません"},
]


def _store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.sqlite'}"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".json"])
def test_data_files_and_column_mapping(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame([{**r, "ground_truth": r["ground_truth"] if isinstance(r["ground_truth"], str)
                           else r["ground_truth"][0]} for r in ROWS])
    path = tmp_path / f"qa{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    table = load_table(path, predictions="answer")
    assert table.columns == {"inputs": "question", "targets": "ground_truth", "context": None,
                             "predictions": "answer", "id": "id"}
    assert [r.id for r in table.rows] == ["q1", "q2", "q3"]
    assert table.rows[1].prediction == "３７７６メートル"
    if suffix in (".jsonl", ".json"):
        assert table.rows[1].ground_truth == ["3776メートル", "3,776m"]
    assert len(table.digest) == 16


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="targets='gold' is not a column of the data; columns: id, question"):
        load_table(pd.DataFrame(ROWS), targets="gold")
    (tmp_path / "x.txt").write_text("東京")
    with pytest.raises(DataError, match="unsupported data file"):
        load_table(tmp_path / "x.txt")
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "missing.csv")


def test_heuristic_metrics_on_existing_predictions(tmp_path: Path) -> None:
    result = hyouka.evaluate(data=pd.DataFrame(ROWS), predictions="answer", targets="ground_truth",
                             metrics=["exact_match", "char_f1", "rouge_l", "bleu", "chrf", "ja_char_ratio",
                                      "answer_tokens"], store=_store(tmp_path), cache=False)
    table = result.table
    assert table["exact_match/score"].tolist() == [1.0, 1.0, 0.0]  # NFKC: ３７７６ is 3776
    assert result.metrics["exact_match"] == pytest.approx(2 / 3)
    assert table["ja_char_ratio/score"].tolist()[0] == 1.0
    assert "bleu/score" not in table  # a corpus metric has no per-row value
    for name in ("rouge_l", "bleu"):
        assert "tokenizer fugashi-unidic-lite" in result.aggregates[name]["note"]
    assert result.aggregates["exact_match"]["n_total"] == 3
    assert list(result.tables) == ["eval_results_table"]
    run = Store(_store(tmp_path)).get_run(result.run_id)
    assert run["kind"] == "benchmark" and run["task"] == "eval:DataFrame"
    assert run["config"]["tokenizer"]["name"] == "fugashi-unidic-lite"


def test_rouge_l_is_japanese_correct(tmp_path: Path) -> None:
    rows = pd.DataFrame({
        "question": ["q1", "q2"],
        "ground_truth": ["吾輩は猫である。名前はまだ無い。", "今日は良い天気ですね。"],
        "answer": ["吾輩は猫である。名前はまだ無い。", "量子コンピュータの誤り訂正符号"],
    })
    result = hyouka.evaluate(data=rows, predictions="answer", targets="ground_truth", metrics=["rouge_l", "rouge1"],
                             store=_store(tmp_path), cache=False)
    identical, unrelated = result.table["rouge_l/score"].tolist()
    assert identical == 1.0
    assert unrelated < 0.1
    assert result.table["rouge1/score"].tolist()[0] == 1.0


def _grader(messages: Sequence[Message]) -> str:
    prompt = prompt_of(messages)
    if "## 評価対象の回答" not in prompt:
        return "I only grade Japanese prompts."
    answer = prompt.split("## 評価対象の回答\n")[1].split("\n\n## 出力形式")[0]
    score = 5 if answer in ("東京", "３７７６メートル") else 1
    return json.dumps({"justification": f"回答「{answer}」を採点", "score": score}, ensure_ascii=False)


def test_judge_metrics_with_a_model_answering(tmp_path: Path) -> None:
    answers = {"日本の首都はどこですか？": "東京", "富士山の高さは？": "３７７６メートル", "光の速さは？": "知りません"}
    model = ScriptedModel(answer=lambda prompt: answers[prompt])
    judge = ScriptedJudge(_grader)
    result = hyouka.evaluate(model, pd.DataFrame(ROWS), targets="ground_truth",
                             metrics=["exact_match", "answer_correctness", answer_relevance(language="en")],
                             judge=judge, store=_store(tmp_path), cache=False)
    table = result.table
    assert table["outputs"].tolist() == ["東京", "３７７６メートル", "知りません"]
    assert table["answer_correctness/score"].tolist() == [5.0, 5.0, 1.0]
    assert table["answer_correctness/justification"][0] == "回答「東京」を採点"
    assert result.metrics["answer_correctness"] == pytest.approx(11 / 3)
    assert result.aggregates["answer_correctness"]["note"].startswith("std ")
    english = [c for c in judge.conversations if "## Answer to grade" in prompt_of(c) and len(c) == 2]
    assert len(english) == 3  # answer_relevance was asked for in English
    assert judge.repairs == 3 and len(judge.conversations) == 9  # the grader reads only Japanese prompts
    assert table["answer_relevance/status"].tolist() == ["parse_error"] * 3
    assert table["status"].tolist() == ["parse_error"] * 3


def test_judge_metrics_need_a_judge_and_their_inputs(tmp_path: Path) -> None:
    data = pd.DataFrame(ROWS)
    with pytest.raises(ValueError, match="needs a judge"):
        hyouka.evaluate(data=data, predictions="answer", metrics=["answer_correctness"], store=_store(tmp_path))
    with pytest.raises(ValueError, match="needs a ground truth column"):
        hyouka.evaluate(data=data.drop(columns=["ground_truth"]), predictions="answer", metrics=["exact_match"],
                        store=_store(tmp_path))
    with pytest.raises(ValueError, match="unknown metric 'bertscore'"):
        hyouka.evaluate(data=data, predictions="answer", metrics=["bertscore"], store=_store(tmp_path))
    result = hyouka.evaluate(data=data, predictions="answer", metrics=["faithfulness"], store=_store(tmp_path),
                             judge=ScriptedJudge(_grader), cache=False)
    agg = result.aggregates["faithfulness"]  # no context column: nothing to judge, and it says so
    assert agg["value"] is None and agg["n_scored"] == 0 and agg["n_total"] == 3
    assert agg["note"] == "no row scored (missing_input 3)"
    assert result.table["faithfulness/status"].tolist() == ["missing_input"] * 3


def test_a_killed_evaluation_resumes_without_paying_again(tmp_path: Path) -> None:
    rows = pd.DataFrame({"question": [f"質問{i}" for i in range(6)], "answer": [f"回答{i}" for i in range(6)]})
    calls: list[str] = []

    def flaky(messages: Sequence[Message]) -> str:
        calls.append(prompt_of(messages))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return '{"justification": "ok", "score": 3}'

    store, cache = _store(tmp_path), tmp_path / "cache.sqlite"
    with pytest.raises(KeyboardInterrupt):
        hyouka.evaluate(data=rows, predictions="answer", metrics=["answer_relevance"], judge=ScriptedJudge(flaky),
                        store=store, cache=cache)
    (run,) = Store(store).list_runs()
    assert run["status"] == "interrupted" and len(Store(store).samples(run["id"])) == 3
    result = hyouka.evaluate(data=rows, predictions="answer", metrics=["answer_relevance"],
                             judge=ScriptedJudge(flaky), store=store, cache=cache)
    assert result.run_id == run["id"] and result.resumed
    assert len(calls) == 4 + 3  # only the three rows not yet recorded were sent again
    assert result.aggregates["answer_relevance"]["n_scored"] == 6
