"""A judge behind a local OpenAI-compatible server (real HTTP on 127.0.0.1) answering in many formats."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from hyouka.evaluation import evaluate
from hyouka.models.base import Message
from hyouka.models.openai_api import OpenAIModel
from hyouka.store.store import Store
from hyouka.testing.openai_server import ServerStats, fail_matching, serve_openai
from tests.judge_fakes import ScriptedJudge, is_repair, prompt_of

# what the judge answers first, and (after "〔" markers) to the repair request
FIRST = {
    "〔json〕": '{"justification": "正解と一致している", "score": 5}',
    "〔fence〕": '```json\n{"理由": "要点が欠けている", "スコア": "３"}\n```',
    "〔fullwidth〕": "スコア：４\n理由：ほぼ正しいが、表現が曖昧。",
    "〔brackets〕": "正解とかなり異なる。評価：［［２］］",
    "〔prose〕": "とても良い回答だと思います。",
    "〔hopeless〕": "わかりません",
    "〔range〕": '{"justification": "満点以上", "score": 9}',
}
REPAIR = {
    "〔prose〕": '{"justification": "要点は正しい", "score": 1}',
    "〔hopeless〕": "やはりわかりません",
    "〔range〕": '{"justification": "正解と一致", "score": 5}',
}


def respond(messages: Sequence[Message]) -> str:
    prompt = prompt_of(messages)
    marker = next(m for m in FIRST if m in prompt)
    return REPAIR[marker] if is_repair(messages) else FIRST[marker]


@pytest.fixture()
def qa() -> pd.DataFrame:
    markers = [*FIRST, "〔down〕"]
    return pd.DataFrame({
        "question": [f"質問{i}" for i in range(len(markers))],
        "ground_truth": ["東京"] * len(markers),
        "answer": [f"東京です。{m}" for m in markers],
    })


def test_judge_formats_statuses_and_repairs_over_http(qa: pd.DataFrame, tmp_path: Path) -> None:
    backend = ScriptedJudge(respond)
    stats = ServerStats()
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    cache = tmp_path / "cache.sqlite"
    with serve_openai(backend, model_name="judge", fail=fail_matching("〔down〕", status=500), stats=stats) as url:
        judge = OpenAIModel("judge", base_url=url, max_retries=1, backoff_s=0.001)
        result = evaluate(data=qa, predictions="answer", targets="ground_truth", judge=judge,
                          metrics=["exact_match", "answer_correctness"], store=store, cache=cache)

        table = result.table
        scores = table["answer_correctness/score"].tolist()
        assert scores[:5] == [5.0, 3.0, 4.0, 2.0, 1.0] and scores[6] == 5.0
        assert pd.isna(scores[5]) and pd.isna(scores[7])
        assert table["answer_correctness/status"].tolist() == ["ok"] * 5 + ["parse_error", "ok", "api_error"]
        assert table["status"].tolist() == ["ok"] * 5 + ["parse_error", "ok", "api_error"]
        assert table["answer_correctness/justification"][1] == "要点が欠けている"
        assert table["answer_correctness/justification"][2] == "ほぼ正しいが、表現が曖昧。"
        assert table["answer_correctness/raw"][5] == "わかりません"

        # exactly one repair request per unreadable judgment, never a second
        assert backend.repairs == 3
        assert stats.by_path["chat/completions"] == 8 + 1 + 3  # 8 rows, one retry of the failing one, 3 repairs

        agg = result.aggregates["answer_correctness"]
        assert agg["value"] == pytest.approx((5 + 3 + 4 + 2 + 1 + 5) / 6)
        assert (agg["n_scored"], agg["n_total"]) == (6, 8)
        assert "parse_error 1" in agg["note"] and "api_error 1" in agg["note"]
        assert result.metrics["exact_match"] == 0.0

        samples = store.samples(result.run_id)
        hopeless = samples[5]["details"]["judge"]["answer_correctness"]
        assert hopeless["repaired"] and hopeless["repair_raw"] == "やはりわかりません"
        assert "after the repair request" in hopeless["error"]
        ranged = samples[6]["details"]["judge"]["answer_correctness"]
        assert ranged["repaired"] and ranged["raw"] == FIRST["〔range〕"]
        first = samples[0]
        assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0 and first["latency_s"] > 0
        assert len(samples[4]["responses"]) == 2  # the judged call and its repair
        run = store.get_run(result.run_id)
        assert run["kind"] == "judge" and run["model"] == "OpenAIModel:judge"
        assert run["config"]["subject_model"].startswith("predictions:")
        assert run["config"]["judge_metrics"][0]["hash"]

        # the same evaluation again: every answered call comes from the cache; only the failed one is retried
        before, seen = stats.requests, len(backend.conversations)
        again = evaluate(data=qa, predictions="answer", targets="ground_truth", judge=judge,
                         metrics=["exact_match", "answer_correctness"], store=store, cache=cache)
        assert stats.requests - before == 2  # the failing row: one attempt and one retry
        assert len(backend.conversations) == seen
        assert again.table["answer_correctness/score"].tolist()[:5] == scores[:5]


def test_model_answers_through_the_server_carry_latency_and_tokens(tmp_path: Path) -> None:
    answers = {"日本の首都は？": "東京です。", "富士山の高さは？": "3776メートルです。", "英語で挨拶して": "Hello!"}

    def answer(messages: Sequence[Message]) -> str:
        return answers[messages[-1].content]

    data = pd.DataFrame({"inputs": list(answers), "ground_truth": ["東京", "３７７６メートル", "こんにちは"]})
    with serve_openai(ScriptedJudge(answer, name="answerer"), model_name="answerer", delay_s=0.01) as url:
        model = OpenAIModel("answerer", base_url=url)
        result = evaluate(model, data, metrics=["exact_match", "char_f1", "latency", "answer_tokens", "ja_char_ratio"],
                          store=f"sqlite:///{tmp_path / 'r.sqlite'}", cache=False)
    table = result.table
    assert table["outputs"].tolist() == list(answers.values())
    assert (table["latency_s"] >= 0.01).all() and (table["latency/score"] >= 0.01).all()
    assert (table["prompt_tokens"] > 0).all() and (table["completion_tokens"] > 0).all()
    assert table["ja_char_ratio/score"].tolist()[2] == 0.0 and table["ja_char_ratio/score"].tolist()[0] == 1.0
    assert table["answer_tokens/score"].tolist()[0] >= 2
    assert result.aggregates["latency"]["higher_is_better"] is False
    assert result.metrics["exact_match"] == pytest.approx(0.0)
    assert Store(f"sqlite:///{tmp_path / 'r.sqlite'}").get_run(result.run_id)["kind"] == "benchmark"
