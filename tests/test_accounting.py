"""Accounting: price tables, per-call cost, run totals equal to the sums over calls, latency percentiles."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import hyouka
from hyouka.engine.accounting import estimate_tokens, fill_tokens, percentile, run_accounting
from hyouka.engine.cache import ResponseCache
from hyouka.models.base import (
    Capabilities,
    ChatRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
    Response,
)
from hyouka.pricing.table import Price, PricingError, default_prices, load_prices
from hyouka.store.store import Store

INPUT_PRICE, OUTPUT_PRICE = 3.0, 15.0  # USD per million tokens


class UsageModel:
    """A backend that reports usage like an API: tokens are characters, latency varies per prompt.

    ``prompt_factor`` multiplies the reported prompt tokens (a chat template's overhead, say), so
    a test can make actual costs run over estimates. ``report_usage=False`` omits usage.
    """

    def __init__(self, name: str = "usage-model", answer: str = "中立", *, prompt_factor: int = 1,
                 report_usage: bool = True) -> None:
        self.name = name
        self.capabilities = Capabilities(loglikelihood=True, generate=True, chat=True)
        self.answer = answer
        self.prompt_factor = prompt_factor
        self.report_usage = report_usage
        self.calls: list[tuple[Request, Response]] = []

    def identity(self) -> dict[str, str]:
        return {"backend": "usage", "name": self.name}

    def count_tokens(self, text: str) -> int:
        return len(text)

    def _latency(self, text: str) -> float:
        return 0.05 + hashlib.sha256(text.encode()).digest()[0] / 100.0

    def _serve(self, requests: Sequence[Request], make: object) -> Iterator[tuple[int, Response]]:
        for i, request in enumerate(requests):
            response = make(request)  # type: ignore[operator]
            self.calls.append((request, response))
            yield i, response

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        def make(r: LoglikelihoodRequest) -> Response:
            text = r.context + r.continuation
            return Response(logprob=-float(len(r.continuation)), is_greedy=False, latency_s=self._latency(text),
                            prompt_tokens=len(text) * self.prompt_factor if self.report_usage else None,
                            completion_tokens=0 if self.report_usage else None)

        return self._serve(requests, make)

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        def make(r: GenerateRequest) -> Response:
            return Response(text=self.answer, latency_s=self._latency(r.prompt),
                            prompt_tokens=len(r.prompt) * self.prompt_factor if self.report_usage else None,
                            completion_tokens=len(self.answer) if self.report_usage else None)

        return self._serve(requests, make)

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        return self.generate([GenerateRequest(r.messages[-1].content, r.params) for r in requests])

    def cost_of_calls(self) -> float:
        return math.fsum((r.prompt_tokens * INPUT_PRICE + r.completion_tokens * OUTPUT_PRICE) / 1e6
                         for _, r in self.calls)


@pytest.fixture()
def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "version: test\nmodels:\n"
        f"  usage-model: {{input: {INPUT_PRICE}, output: {OUTPUT_PRICE}}}\n"
        "  'gpu-*': {gpu_hour: 3.6, gpus: 2}\n"
        "  gpt-4o-mini: {input: 99, output: 99}\n",
        encoding="utf-8",
    )
    return path


# -- price tables -----------------------------------------------------------------------------
def test_call_cost_per_token_and_per_gpu_hour() -> None:
    assert Price(input=2.0, output=8.0).call_cost(1_000_000, 500_000, None) == pytest.approx(6.0)
    assert Price(gpu_hour=3.6, gpus=2).call_cost(None, None, 10.0) == pytest.approx(0.02)
    assert Price(input=1.0).call_cost(None, 5, 1.0) is None  # a price that needs prompt tokens it lacks
    assert Price(gpu_hour=1.0).call_cost(10, 10, None) is None


def test_lookup_prefers_user_file_exact_keys_and_matches_bare_names(price_file: Path) -> None:
    table = load_prices(price_file)
    assert table.lookup("openai:gpt-4o-mini").price.input == 99  # user file before the defaults
    assert default_prices().lookup("openai:gpt-4o-mini").price.input == 0.15
    assert default_prices().lookup("openai:gpt-4o-mini-2024-07-18").key == "gpt-4o-mini-20*"
    assert default_prices().lookup("openai:gpt-4o").price.input == 2.5  # exact key, not the mini pattern
    assert table.lookup("hf:gpu-llama").price.gpu_hour == 3.6  # pattern on the bare name
    assert table.lookup("Fake:x", {"name": "usage-model"}).key == "usage-model"  # the identity's name
    assert table.lookup("hf:rinna/japanese-gpt-neox-3.6b") is None


def test_invalid_price_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {input: -1}\n", encoding="utf-8")
    with pytest.raises(PricingError, match="invalid"):
        load_prices(bad)


# -- tokens and percentiles -------------------------------------------------------------------
def test_percentiles_match_linear_interpolation() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([float(i) for i in range(1, 21)], 95) == pytest.approx(19.05)
    assert percentile([], 50) is None


def test_missing_usage_is_filled_from_the_tokenizer() -> None:
    request = GenerateRequest("日本語のテキスト abcd")
    response = fill_tokens(request, Response(text="答え"), lambda text: len(text) * 10)
    assert (response.prompt_tokens, response.completion_tokens) == (len(request.prompt) * 10, 20)
    reported = fill_tokens(request, Response(text="x", prompt_tokens=7, completion_tokens=1), len)
    assert (reported.prompt_tokens, reported.completion_tokens) == (7, 1)  # the API's usage wins
    assert estimate_tokens("日本語abcdefgh") == 3 + 2


# -- a whole run ------------------------------------------------------------------------------
def test_run_totals_equal_the_sums_over_calls(
    jglue_dir: Path, store: Store, cache: ResponseCache, price_file: Path
) -> None:
    model = UsageModel()
    result = hyouka.run(model, "jcommonsenseqa", limit=12, data_dir=jglue_dir, store=store, cache=cache,
                        prices=price_file)
    run = result["jcommonsenseqa"]
    acc = store.get_run(run.run_id)["stats"]["accounting"]
    responses = [r for _, r in model.calls]
    assert acc["n_calls"] == len(responses) == 60
    assert acc["prompt_tokens"] == sum(r.prompt_tokens for r in responses)
    assert acc["completion_tokens"] == 0 and acc["total_tokens"] == acc["prompt_tokens"]
    assert acc["cost_usd"] == pytest.approx(model.cost_of_calls(), rel=1e-12)
    assert acc["spent_usd"] == pytest.approx(acc["cost_usd"], rel=1e-12)
    latencies = [r.latency_s for r in responses]
    assert acc["latency_s"]["p50"] == pytest.approx(float(np.percentile(latencies, 50)))
    assert acc["latency_s"]["p95"] == pytest.approx(float(np.percentile(latencies, 95)))
    assert acc["latency_s"]["p50"] < acc["latency_s"]["p95"] <= max(latencies)
    assert acc["price"]["key"] == "usage-model"

    samples = store.samples(run.run_id)
    assert math.fsum(s["cost_usd"] for s in samples) == pytest.approx(acc["cost_usd"], rel=1e-12)
    first = samples[0]
    assert first["cost_usd"] == pytest.approx(first["prompt_tokens"] * INPUT_PRICE / 1e6)

    # Served from the cache by a second run: the same nominal cost, nothing spent.
    again = UsageModel()
    second = hyouka.run(again, "jcommonsenseqa", limit=12, data_dir=jglue_dir, store=store, cache=cache,
                        prices=price_file)["jcommonsenseqa"]
    acc2 = second.extra["accounting"]
    assert not again.calls and second.run_id != run.run_id
    assert acc2["n_cached_calls"] == 60 and acc2["spent_usd"] == 0.0
    assert acc2["cost_usd"] == pytest.approx(acc["cost_usd"], rel=1e-12)


def test_tokens_come_from_the_tokenizer_when_the_api_reports_none(
    jglue_dir: Path, store: Store, price_file: Path
) -> None:
    model = UsageModel(report_usage=False)
    run = hyouka.run(model, "jnli", mode="generate", limit=6, data_dir=jglue_dir, store=store, cache=False,
                     prices=price_file)["jnli"]
    for sample in store.samples(run.run_id):
        assert sample["prompt_tokens"] == len(sample["prompt"])  # UsageModel.count_tokens
        assert sample["completion_tokens"] == len("中立")


def test_gpu_hour_price_applies_to_measured_time(jglue_dir: Path, store: Store, price_file: Path) -> None:
    model = UsageModel(name="gpu-model")
    run = hyouka.run(model, "jnli", mode="generate", limit=5, data_dir=jglue_dir, store=store, cache=False,
                     prices=price_file)["jnli"]
    busy = math.fsum(r.latency_s for _, r in model.calls)
    assert run.extra["accounting"]["cost_usd"] == pytest.approx(3.6 * 2 * busy / 3600)
    assert run.extra["accounting"]["busy_s"] == pytest.approx(busy)


def test_unpriced_model_has_tokens_but_no_cost(jglue_dir: Path, store: Store) -> None:
    model = UsageModel(name="nobody-prices-me")
    run = hyouka.run(model, "jnli", mode="generate", limit=4, data_dir=jglue_dir, store=store, cache=False)["jnli"]
    acc = run.extra["accounting"]
    assert acc["cost_usd"] is None and acc["price"] is None and acc["n_unpriced_calls"] == 4
    assert acc["prompt_tokens"] > 0
    assert all(s["cost_usd"] is None for s in store.samples(run.run_id))


def test_failed_calls_are_counted_apart() -> None:
    samples = [
        {"responses": [{"prompt_tokens": 10, "completion_tokens": 2, "latency_s": 1.0, "error": None}]},
        {"responses": [{"error": "HTTP 500", "latency_s": None}]},
    ]
    acc = run_accounting(samples, None)
    assert acc["n_calls"] == 2 and acc["n_failed_calls"] == 1
    assert acc["prompt_tokens"] == 10 and acc["latency_s"]["p50"] == 1.0
    assert acc["ttft_s"] is None  # no streamed call


def test_time_to_first_token_is_summarised_over_streamed_calls() -> None:
    samples = [
        {"responses": [Response(text="a", latency_s=1.0, ttft_s=0.25).to_dict()]},
        {"responses": [Response(text="b", latency_s=2.0, ttft_s=0.75).to_dict()]},
        {"responses": [Response(text="c", latency_s=3.0).to_dict()]},  # not streamed
        {"responses": [Response.failure("HTTP 500").to_dict()]},
    ]
    acc = run_accounting(samples, None)
    assert acc["ttft_s"]["p50"] == pytest.approx(0.5) and acc["ttft_s"]["max"] == 0.75
    assert acc["latency_s"]["p50"] == 2.0


def test_usage_reported_over_http_is_recorded(jglue_dir: Path, store: Store, price_file: Path) -> None:
    pytest.importorskip("fastapi")
    from hyouka.testing.openai_server import EchoModel, serve_openai

    prices = price_file.parent / "echo-prices.yaml"
    prices.write_text("models:\n  echo: {input: 1.0, output: 2.0}\n", encoding="utf-8")
    with serve_openai(EchoModel(reply="中立")) as url:
        run = hyouka.run("openai:echo", "jnli", mode="generate", limit=5, data_dir=jglue_dir, store=store,
                         cache=False, prices=prices, base_url=url, api="completions")["jnli"]
    samples = store.samples(run.run_id)
    # The echo server counts one token per character.
    assert [s["prompt_tokens"] for s in samples] == [len(s["prompt"]) for s in samples]
    assert all(s["completion_tokens"] == len("中立") for s in samples)
    expected = math.fsum((s["prompt_tokens"] * 1.0 + s["completion_tokens"] * 2.0) / 1e6 for s in samples)
    assert run.extra["accounting"]["cost_usd"] == pytest.approx(expected)
    assert all(s["latency_s"] > 0 for s in samples)


def test_streamed_calls_record_time_to_first_token(jglue_dir: Path, store: Store) -> None:
    pytest.importorskip("fastapi")
    from hyouka.testing.openai_server import EchoModel, serve_openai

    with serve_openai(EchoModel(reply="中立"), chunk_delay_s=0.01) as url:
        run = hyouka.run("openai:echo", "jnli", mode="generate", limit=3, data_dir=jglue_dir, store=store,
                         cache=False, base_url=url, api="chat", stream=True)["jnli"]
    calls = [r for s in store.samples(run.run_id) for r in s["responses"]]
    assert calls and all(0 < c["ttft_s"] < c["latency_s"] for c in calls)
    ttft = run.extra["accounting"]["ttft_s"]
    assert ttft is not None and 0 < ttft["p50"] <= run.extra["accounting"]["latency_s"]["p50"]


def test_sample_totals_skip_calls_that_reported_nothing() -> None:
    from hyouka.engine.records import sample_record
    from hyouka.models.base import LoglikelihoodRequest, Response
    from hyouka.tasks.task import Scored

    requests = [LoglikelihoodRequest("問", c) for c in ("はい", "いいえ", "たぶん")]
    responses = [
        Response(logprob=-1.0, latency_s=0.25, prompt_tokens=3, completion_tokens=1),
        Response(logprob=-2.0, latency_s=0.5, prompt_tokens=4),
        Response.failure("timed out", "api_error"),
    ]
    scored = Scored(0, "はい", 0, {"acc": 1.0}, "ok")
    record = sample_record(0, {"_id": "q1"}, "問", requests, responses, scored)
    assert (record["latency_s"], record["prompt_tokens"], record["completion_tokens"]) == (0.75, 7, 1)
    none = sample_record(0, {"_id": "q1"}, "問", requests[2:], responses[2:], scored)
    assert (none["latency_s"], none["prompt_tokens"], none["completion_tokens"]) == (None, None, None)
