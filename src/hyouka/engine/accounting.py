"""Latency, tokens and cost of model calls: per call, per sample, per run.

Costs are *nominal*: what producing the answers costs at the price table's rates, whether
or not this session paid for them (an answer served from the cache keeps the tokens and
latency of the call that produced it). ``spent_usd`` in a run's summary counts only the
calls that were not served from the cache, i.e. the money the run actually cost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyouka.models.base import ChatRequest, GenerateRequest, LoglikelihoodRequest, Request, Response
from hyouka.pricing.table import Price, PriceMatch, PriceTable

TokenCounter = Callable[[str], int]
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per kana/kanji/full-width character, one per 4 other characters."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def token_counter(model: Any) -> TokenCounter:
    """Count tokens with the model's own tokenizer when it exposes one, else :func:`estimate_tokens`."""
    count = getattr(model, "count_tokens", None)
    if callable(count):
        return count
    tokenizer = getattr(model, "tokenizer", None)
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        return lambda text: len(encode(text))
    return estimate_tokens


def request_text(request: Request) -> str:
    """The text a request sends to the model (what its prompt tokens count)."""
    if isinstance(request, LoglikelihoodRequest):
        return request.context + request.continuation
    if isinstance(request, GenerateRequest):
        return request.prompt
    if isinstance(request, ChatRequest):
        return "\n".join(m.content for m in request.messages)
    return str(request.text)  # type: ignore[attr-defined]  # an embedding request (hyouka.rag.calls)


def fill_tokens(request: Request, response: Response, count: TokenCounter) -> Response:
    """Fill token counts the API did not report, from the tokenizer (in place; returns the response)."""
    if not response.ok:
        return response
    if response.prompt_tokens is None:
        response.prompt_tokens = count(request_text(request))
    if response.completion_tokens is None:
        response.completion_tokens = 0 if request.kind == "loglikelihood" else count(response.text or "")
    return response


def price_for(table: PriceTable | None, model: str, identity: Mapping[str, Any] | None = None) -> PriceMatch | None:
    return None if table is None else table.lookup(model, dict(identity or {}))


def response_cost(price: Price | None, response: Response | Mapping[str, Any]) -> float | None:
    """Cost of one call (a :class:`Response` or its stored dict); ``None`` if unpriced or failed."""
    if price is None:
        return None
    if isinstance(response, Response):
        if response.error is not None:
            return None
        return price.call_cost(response.prompt_tokens, response.completion_tokens, response.latency_s)
    if response.get("error") is not None:
        return None
    return price.call_cost(response.get("prompt_tokens"), response.get("completion_tokens"), response.get("latency_s"))


def sample_cost(price: Price | None, responses: Iterable[Response | Mapping[str, Any]]) -> float | None:
    """Sum of a sample's call costs; ``None`` when no call could be priced."""
    if price is None:
        return None
    costs = [c for c in (response_cost(price, r) for r in responses) if c is not None]
    return math.fsum(costs) if costs else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation, as numpy), ``None`` for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def latency_summary(latencies: Sequence[float]) -> dict[str, float | None]:
    return {
        "mean": float(np.mean(latencies)) if len(latencies) else None,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "max": float(max(latencies)) if len(latencies) else None,
    }


def call_rows(samples: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every stored call of every sample, as response dicts (the samples' own: read, never change them)."""
    return [r for s in samples for r in (s.get("responses") or [])]


def run_accounting(
    samples: Sequence[Mapping[str, Any]],
    price: PriceMatch | None,
    *,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Totals, latency percentiles and throughput of a run's calls, from its stored samples."""
    calls = call_rows(samples)
    the_price = price.price if price else None
    n_ok = n_fresh = prompt = completion = n_unpriced = 0
    latencies: list[float] = []
    ttfts: list[float] = []
    costs: list[float] = []
    fresh_costs: list[float] = []
    for call in calls:  # one pass: a run can hold hundreds of thousands of calls
        if call.get("error") is not None:
            continue
        n_ok += 1
        fresh = not call.get("cached")
        n_fresh += fresh
        if (latency := call.get("latency_s")) is not None:
            latencies.append(float(latency))
        if (ttft := call.get("ttft_s")) is not None:
            ttfts.append(float(ttft))
        prompt += int(call.get("prompt_tokens") or 0)
        completion += int(call.get("completion_tokens") or 0)
        cost = response_cost(the_price, call)
        if cost is None:
            n_unpriced += 1
            continue
        costs.append(cost)
        if fresh:
            fresh_costs.append(cost)
    busy = math.fsum(latencies)
    summary: dict[str, Any] = {
        "n_calls": len(calls),
        "n_failed_calls": len(calls) - n_ok,
        "n_cached_calls": n_ok - n_fresh,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost_usd": math.fsum(costs) if price else None,
        "spent_usd": math.fsum(fresh_costs) if price else None,
        "n_unpriced_calls": n_unpriced,
        "latency_s": latency_summary(latencies),
        "ttft_s": latency_summary(ttfts) if ttfts else None,
        "busy_s": busy,
        "completion_tokens_per_s": completion / busy if busy > 0 else None,
        "calls_per_s": n_fresh / duration_s if duration_s and n_fresh else None,
        "price": price.to_dict() if price else None,
    }
    return summary


def ok_latencies(calls: Iterable[Mapping[str, Any]]) -> list[float]:
    """The latency of each successful call that measured one: what latency percentiles are taken of."""
    return [float(c["latency_s"]) for c in calls if c.get("error") is None and c.get("latency_s") is not None]


def answer_calls(samples: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """In a judge run, the evaluated model's answer calls (each kept in its sample's ``details['answer']``)."""
    return [s["details"]["answer"] for s in samples if isinstance((s.get("details") or {}).get("answer"), dict)]


SUMMARY_VERSION = 1


def _rates(price: PriceMatch | None) -> dict[str, Any] | None:
    return price.price.model_dump() if price else None


@dataclass
class RunSummary:
    """What views read of a finished run's calls, computed once when it finishes (:func:`run_summary`).

    ``accounting``: :func:`run_accounting` of its calls (a judge run's: the judge's); ``answer_accounting``:
    of the answers a judge run judged, priced as the evaluated model; each with its calls' latencies,
    sorted, so that a leaderboard row over several runs takes its percentiles over all their calls.
    ``rates``: the prices it was computed at (``model`` and ``subject``), to tell when another table differs.
    """

    accounting: dict[str, Any]
    answer_accounting: dict[str, Any] | None
    latencies: np.ndarray
    answer_latencies: np.ndarray
    rates: dict[str, Any]

    def priced_as(self, price: PriceMatch | None, subject_price: PriceMatch | None) -> bool:
        """The summary's costs are those at these prices (the run's model's, and the evaluated model's)."""
        return self.rates == {"model": _rates(price), "subject": _rates(subject_price)}

    def to_row(self) -> dict[str, Any]:
        """The store's columns: JSON, and the latencies as little-endian float64."""
        return {"summary": {"version": SUMMARY_VERSION, "accounting": self.accounting,
                            "answer_accounting": self.answer_accounting, "rates": self.rates},
                "latencies": self.latencies.astype("<f8").tobytes(),
                "answer_latencies": self.answer_latencies.astype("<f8").tobytes()}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunSummary | None:
        """A stored summary; ``None`` for one of another version (computed again)."""
        data = row.get("summary") or {}
        if data.get("version") != SUMMARY_VERSION:
            return None
        return cls(data["accounting"], data.get("answer_accounting"),
                   np.frombuffer(row.get("latencies") or b"", dtype="<f8"),
                   np.frombuffer(row.get("answer_latencies") or b"", dtype="<f8"), data["rates"])


def run_summary(
    samples: Sequence[Mapping[str, Any]],
    price: PriceMatch | None,
    subject_price: PriceMatch | None = None,
    *,
    duration_s: float | None = None,
    accounting: dict[str, Any] | None = None,
) -> RunSummary:
    """A run's :class:`RunSummary` from its stored samples (``accounting``: its :func:`run_accounting` at
    ``price``, when the caller computed it already)."""
    answers = answer_calls(samples)
    return RunSummary(
        accounting=accounting if accounting is not None else run_accounting(samples, price, duration_s=duration_s),
        answer_accounting=run_accounting([{"responses": answers}], subject_price) if answers else None,
        latencies=np.sort(np.asarray(ok_latencies(call_rows(samples)), dtype=float)),
        answer_latencies=np.sort(np.asarray(ok_latencies(answers), dtype=float)),
        rates={"model": _rates(price), "subject": _rates(subject_price)},
    )
