"""A finished run's calls are summarised once, when it finishes; the leaderboard reads those summaries, not
the samples; a store written before summaries gains them on its first read. Checked against numpy over the
stored calls themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete

import hyouka
from hyouka.models.base import GenerateRequest, Response
from hyouka.report.views import load_views
from hyouka.store.reader import SQLiteReader
from hyouka.store.schema import RunSummaryRow
from hyouka.store.store import Store
from tests.fakes import ScriptedModel
from tests.judge_fakes import ScriptedJudge

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from hyouka.web.app import create_app

PRICES = "models:\n  VariedModel:varied: {input: 2.0, output: 10.0}\n  judge: {input: 1.0, output: 4.0}\n"


class VariedModel(ScriptedModel):
    """Answers 中立, each call taking a latency of its own (from its prompt's length)."""

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        for index, response in super().generate(requests):
            response.latency_s = 0.01 + (len(requests[index].prompt) * 7919 % 97) / 1000
            yield index, response


@pytest.fixture()
def filled(tmp_path: Path, jglue_dir: Path) -> dict[str, Any]:
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES, encoding="utf-8")
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    model = VariedModel(answer=lambda _prompt: "中立")
    model.name = "varied"
    runs = [hyouka.run(model, task, mode="generate", limit=limit, data_dir=jglue_dir, store=store, cache=False,
                       prices=str(prices)).runs[0].run_id for task, limit in (("jnli", 10), ("jcommonsenseqa", 10))]
    return {"store": store, "runs": runs, "prices": str(prices)}


def _calls(store: Store, run_ids: list[str]) -> list[dict[str, Any]]:
    return [c for r in run_ids for s in store.samples(r) for c in s["responses"]]


def _no_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the leaderboard read samples")

    for cls in (Store, SQLiteReader):
        monkeypatch.setattr(cls, "samples", refuse)
        monkeypatch.setattr(cls, "call_samples", refuse)


def _row(client: TestClient) -> dict[str, Any]:
    (row,) = [r for t in client.get("/api/leaderboard").json()["tables"] for r in t["rows"]]
    return row


def test_the_leaderboard_reads_the_summaries_written_at_finish(filled: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store, runs = filled["store"], filled["runs"]
    calls = _calls(store, runs)
    assert set(store.summaries(runs)) == set(runs)
    _no_samples(monkeypatch)
    row = _row(TestClient(create_app(store, prices=filled["prices"])))
    latencies = [c["latency_s"] for c in calls]
    assert len(set(latencies)) > 5  # the row's percentiles are over both runs' calls, not per run
    assert row["latency_p50"] == pytest.approx(float(np.percentile(latencies, 50)))
    assert row["latency_p95"] == pytest.approx(float(np.percentile(latencies, 95)))
    assert row["n_calls"] == len(calls) == 20
    assert row["total_tokens"] == sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    assert row["cost_usd"] == pytest.approx(sum(c["prompt_tokens"] * 2 + c["completion_tokens"] * 10
                                                for c in calls) / 1e6)


def test_an_older_store_gains_its_summaries_once(filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    store, runs = filled["store"], filled["runs"]
    expected = _row(TestClient(create_app(store, prices=filled["prices"])))
    with store.session() as s, s.begin():
        s.execute(delete(RunSummaryRow))  # as a store written before summaries existed
    read: list[str] = []
    calls_of = Store.call_samples
    monkeypatch.setattr(Store, "call_samples", lambda self, run_id: read.append(run_id) or calls_of(self, run_id))
    assert _row(TestClient(create_app(store, prices=filled["prices"]))) == expected
    assert sorted(read) == sorted(runs) and set(store.summaries(runs)) == set(runs)  # computed, written back
    _no_samples(monkeypatch)
    assert _row(TestClient(create_app(store, prices=filled["prices"]))) == expected  # a restart reads none


def test_a_summary_is_not_read_for_a_run_finished_again_or_other_prices(filled: dict[str, Any],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store, runs = filled["store"], filled["runs"]
    run = store.get_run(runs[0])
    store.update_run(runs[0], finished_at=run["finished_at"].replace(year=2001))  # finished again since
    (view,) = load_views(store, [runs[0]], prices=filled["prices"], samples=False)
    assert store.summaries([runs[0]])[runs[0]]["finished_at"] == store.get_run(runs[0])["finished_at"]
    unpriced = load_views(store, runs, samples=False)  # the default table has no price for these models
    assert [v.accounting["cost_usd"] for v in unpriced] == [None, None]
    assert view.accounting["cost_usd"] is not None


def _grade(messages: Any) -> str:
    return json.dumps({"justification": "よい", "score": 4})


def test_a_judge_runs_summary_holds_the_answers_apart(filled: dict[str, Any]) -> None:
    store, prices = filled["store"], filled["prices"]
    data = pd.DataFrame({"question": ["日本の首都は？", "1+1は？", "水の化学式は？"], "gold": ["東京", "2", "H2O"]})
    model = VariedModel(answer=lambda prompt: "東京")
    model.name = "varied"
    judged = hyouka.evaluate(model, data, inputs="question", targets="gold", metrics="answer_correctness",
                             judge=ScriptedJudge(_grade, name="judge"), store=store, cache=False,
                             prices=prices).run_id
    (light,) = load_views(store, [judged], prices=prices, samples=False)
    (full,) = load_views(store, [judged], prices=prices)
    answers = [s["details"]["answer"] for s in store.samples(judged)]
    assert light.answer_accounting == full.answer_accounting and light.accounting == full.accounting
    assert light.answer_accounting["n_calls"] == 3
    assert light.answer_accounting["cost_usd"] == pytest.approx(
        sum(a["prompt_tokens"] * 2 + a["completion_tokens"] * 10 for a in answers) / 1e6)
    assert list(light.latencies(answers=True)) == sorted(a["latency_s"] for a in answers)
