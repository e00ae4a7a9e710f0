"""Judge runs record accounting like benchmark runs: per-sample ``cost_usd`` and ``stats["accounting"]``.

In a judge run the calls a sample records (``responses``) are the judge's, priced at the judge's rates;
the evaluated model's answer (``details["answer"]``) is not counted in either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

import hyouka
from hyouka.engine.accounting import estimate_tokens
from hyouka.models.base import Message
from hyouka.store.store import Store
from tests.judge_fakes import ScriptedJudge, is_repair, prompt_of

INPUT_PRICE, OUTPUT_PRICE = 3.0, 15.0  # USD per million tokens


def _price_file(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(f'version: test\nmodels:\n  "{model}": {{input: {INPUT_PRICE}, output: {OUTPUT_PRICE}}}\n',
                    encoding="utf-8")
    return path


def _respond(messages: Sequence[Message]) -> str:
    if is_repair(messages):
        return '{"justification": "要点は正しい", "score": 4}'
    if "〔prose〕" in prompt_of(messages):
        return "とても良い回答だと思います。"  # unreadable: one repair request follows
    return '{"justification": "正解と一致している", "score": 5}'


def _cost(prompt: int, completion: int) -> float:
    return (prompt * INPUT_PRICE + completion * OUTPUT_PRICE) / 1e6


def test_evaluate_with_a_judge_records_accounting(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from hyouka.models.openai_api import OpenAIModel
    from hyouka.testing.openai_server import serve_openai

    data = pd.DataFrame({
        "question": ["日本の首都は？", "富士山の高さは？", "一番長い川は？"],
        "ground_truth": ["東京", "3776メートル", "信濃川"],
        "answer": ["東京です。", "3776メートルです。〔prose〕", "信濃川です。"],
    })
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    backend = ScriptedJudge(_respond)
    with serve_openai(backend, model_name="judge") as url:
        judge = OpenAIModel("judge", base_url=url, max_retries=1, backoff_s=0.001)
        result = hyouka.evaluate(data=data, predictions="answer", targets="ground_truth", judge=judge,
                                 metrics=["answer_correctness"], store=store, cache=False,
                                 prices=_price_file(tmp_path, "judge"))

    run = store.get_run(result.run_id)
    assert run["kind"] == "judge" and run["status"] == "completed"
    samples = store.samples(result.run_id)
    calls = [r for s in samples for r in s["responses"]]
    assert len(calls) == len(backend.conversations) == 3 + 1  # three judgments, one repair
    for s in samples:
        expected = math.fsum(_cost(r["prompt_tokens"], r["completion_tokens"]) for r in s["responses"])
        assert s["cost_usd"] == pytest.approx(expected, rel=1e-12)
        assert s["cost_usd"] > 0

    acc = run["stats"]["accounting"]
    assert acc["n_calls"] == 4 and acc["n_failed_calls"] == 0 and acc["n_unpriced_calls"] == 0
    assert acc["prompt_tokens"] == sum(r["prompt_tokens"] for r in calls)
    assert acc["completion_tokens"] == sum(r["completion_tokens"] for r in calls)
    assert acc["total_tokens"] == acc["prompt_tokens"] + acc["completion_tokens"]
    assert acc["cost_usd"] == pytest.approx(math.fsum(s["cost_usd"] for s in samples), rel=1e-12)
    assert acc["cost_usd"] == pytest.approx(_cost(acc["prompt_tokens"], acc["completion_tokens"]), rel=1e-12)
    assert acc["spent_usd"] == pytest.approx(acc["cost_usd"])  # nothing from a cache
    assert acc["price"]["key"] == "judge" and acc["price"]["version"] == "test"
    # the judge's usage as the server reported it: prompt characters, answer characters
    assert acc["completion_tokens"] == sum(len(r["text"]) for r in calls)
    # the other stats are still there
    assert run["stats"]["statuses"] == {"ok": 3} and "calls" in run["stats"]


def test_the_report_prices_the_judge_run_as_recorded(tmp_path: Path) -> None:
    """The report's judge cost (priced from samples) equals the run's recorded accounting: no double count."""
    from hyouka.report.views import load_views

    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    prices = _price_file(tmp_path, "scripted-judge")
    result = hyouka.evaluate(data=[{"question": "首都は？", "ground_truth": "東京", "answer": "東京"}],
                             predictions="answer", targets="ground_truth", judge=ScriptedJudge(_respond),
                             metrics=["answer_correctness"], store=store, cache=False, prices=prices)
    (view,) = load_views(store, [result.run_id], prices=str(prices))
    recorded = store.get_run(result.run_id)["stats"]["accounting"]
    assert recorded["cost_usd"] is not None and recorded["n_calls"] == 1
    for key in ("n_calls", "prompt_tokens", "completion_tokens", "cost_usd"):
        assert view.accounting[key] == recorded[key]


def test_mt_bench_recorded_run_has_accounting(mt_bench_dir: Path, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    model = "jslma-7b-ja-orca-6k-3ep"
    prices = _price_file(tmp_path, "*gpt-4_single*")
    result = hyouka.run(f"recorded:{mt_bench_dir / 'model_answer' / f'{model}.jsonl'}", "ja_mt_bench",
                        judge=f"recorded:{mt_bench_dir / 'model_judgment' / 'gpt-4_single.jsonl'}",
                        data_dir=mt_bench_dir, store=store, cache=False, limit=6, prices=prices)
    (judged,) = result.runs
    run = store.get_run(judged.run_id)
    samples = store.samples(judged.run_id)
    turns = [s for s in samples if s["status"] == "ok"]
    assert len(samples) == 12 and len(turns) == 6  # turn 2 is never answered in the recorded file

    acc = run["stats"]["accounting"]
    assert acc["n_calls"] == len(turns) and acc["n_failed_calls"] == 0
    calls = [r for s in samples for r in s["responses"]]
    # recorded judgments carry no usage: tokens are the tokenizer-free estimate
    assert all(r["completion_tokens"] == estimate_tokens(r["text"]) for r in calls)
    assert acc["prompt_tokens"] == sum(r["prompt_tokens"] for r in calls) > 0
    assert acc["completion_tokens"] == sum(r["completion_tokens"] for r in calls) > 0
    assert acc["price"] is not None and acc["n_unpriced_calls"] == 0
    assert acc["cost_usd"] == pytest.approx(_cost(acc["prompt_tokens"], acc["completion_tokens"]), rel=1e-12)
    for s in turns:
        assert s["cost_usd"] == pytest.approx(
            math.fsum(_cost(r["prompt_tokens"], r["completion_tokens"]) for r in s["responses"]), rel=1e-12)
    assert all(s["cost_usd"] is None for s in samples if not s["responses"])
    # the evaluated model's answers are not the judge's calls
    answers = [s["details"]["answer"] for s in turns]
    assert all(a and a["text"] not in {r["text"] for r in calls} for a in answers)
