"""Dry runs of ``hyouka.evaluate``: the calls, tokens and cost it would take, before any call.

The model's requests are the ones :func:`hyouka.evaluation.evaluate` sends (same rows, few-shot
examples, system prompt, cache keys); those the response cache answers cost nothing. A judge's
prompt holds the answer, unknown before it is made: where the answer is cached the exact judge
request is priced (and found in the cache or not); elsewhere the answer is taken as
``max_tokens`` tokens long. Completion tokens count at each request's ``max_tokens``, so costs are
upper estimates, as :mod:`hyouka.engine.estimate`'s.

With ``index`` (a RAG evaluation) each question's prompt is planned by :func:`hyouka.rag.plan.plan_retrieval`:
exact where the retrieval is cached or free to run (BM25, a cached query vector), else built from the
index's ``k`` longest chunks (an upper bound), with the questions' embeddings priced apart
(``retrieval``); ``retrieval.method`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hyouka.engine.accounting import token_counter
from hyouka.engine.budget import estimated_cost, estimated_tokens
from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.evaluation.backends import open_cache, resolve_model, spec_name
from hyouka.evaluation.core import _judge_fields, _Judges, _rag_step, _split_metrics, answer_request
from hyouka.evaluation.data import load_table
from hyouka.evaluation.fewshot import pick_fewshot
from hyouka.judge.grading import call_request
from hyouka.judge.metrics import MissingInputError
from hyouka.models.base import GenerationParams, Request
from hyouka.pricing.table import PriceTable, load_prices

__all__ = ["CallEstimate", "EvalEstimate", "estimate_evaluate"]

_PLACEHOLDER = "あ"  # one token by hyouka's estimate: an unknown answer of max_tokens tokens


@dataclass
class CallEstimate:
    """The calls one model would get, and their upper cost (``None``: no price, or priced by time)."""

    model: str
    n_requests: int = 0
    n_cached: int = 0
    n_calls: int = 0
    prompt_tokens: int = 0
    max_completion_tokens: int = 0
    cost_usd: float | None = 0.0
    priced: bool = True

    def add(self, request: Request, cached: bool, price: Any, count: Any) -> None:
        self.n_requests += 1
        if cached:
            self.n_cached += 1
            return
        self.n_calls += 1
        prompt, completion = estimated_tokens(request, count)
        self.prompt_tokens += prompt
        self.max_completion_tokens += completion
        one = estimated_cost(price, request, count)
        self.cost_usd = None if self.cost_usd is None or one is None else self.cost_usd + one


@dataclass
class EvalEstimate:
    """What one ``evaluate`` call would cost: the evaluated model's calls and each judge's."""

    n_rows: int
    model: CallEstimate
    judges: list[CallEstimate] = field(default_factory=list)
    retrieval: Any = None  # a RAG evaluation's hyouka.rag.plan.RetrievalPlan: how prompts were found, embeddings

    @property
    def n_calls(self) -> int:
        return self.model.n_calls + sum(j.n_calls for j in self.judges)

    @property
    def embedding_cost_usd(self) -> float | None:
        """The questions' embeddings (a dense or hybrid index); 0 without; ``None``: the embedder has no price."""
        return 0.0 if self.retrieval is None else self.retrieval.embed_cost_usd

    @property
    def judge_cost_usd(self) -> float | None:
        costs = [j.cost_usd for j in self.judges]
        return None if any(c is None for c in costs) else math.fsum(costs)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "n_calls": self.n_calls, "model": asdict(self.model),
                "judges": [asdict(j) for j in self.judges], "judge_cost_usd": self.judge_cost_usd,
                "retrieval": self.retrieval.to_dict() if self.retrieval is not None else None}


def estimate_evaluate(
    model: Any,
    data: str | Path | pd.DataFrame | Sequence[dict[str, Any]],
    *,
    metrics: Sequence[Any] | str | None = None,
    judge: Any = None,
    targets: str | None = None,
    inputs: str | None = None,
    context: str | None = None,
    id_column: str | None = None,
    language: str = "ja",
    max_tokens: int = 256,
    system_prompt: str | None = None,
    judge_max_tokens: int = 1024,
    limit: int | None = None,
    cache: ResponseCache | str | Path | bool = True,
    judge_options: dict[str, Any] | None = None,
    seed: int = 0,
    prices: PriceTable | str | Path | None = None,
    encoding: str = "utf-8",
    num_fewshot: int = 0,
    index: Any = None,
    k: int | None = None,
    rag_prompt: str | Path | None = None,
    relevant: str | None = None,
    **model_options: Any,
) -> EvalEstimate:
    """The calls :func:`hyouka.evaluation.evaluate` with these arguments would make, priced; calls nothing
    that costs money (a BM25 index is searched: it is local)."""
    table = load_table(data, inputs=inputs, targets=targets, context=context, id_column=id_column, limit=limit,
                       encoding=encoding)
    shots = pick_fewshot(table.rows, num_fewshot, seed) if num_fewshot else {}
    the_cache = open_cache(cache)
    rag, metrics, _, _ = _rag_step(index, k, table, model, metrics, None, rag_prompt, language, the_cache, relevant,
                                   prices)
    _, judged = _split_metrics(metrics, None, language, table.columns["targets"] is not None, True)
    plan = None
    rows = table.rows
    asked = rows
    if rag is not None:  # the model answers each question's RAG prompt; judges read its chunks as the context
        from hyouka.rag.plan import plan_retrieval

        plan = plan_retrieval(rag, table.rows)
        asked = [replace(row, inputs=plan.rows[row.index].prompt) for row in rows]
        rows = [replace(row, context=plan.rows[row.index].context or None) for row in rows]
    backend = resolve_model(model, model_options)
    table_prices = load_prices(prices)
    name = spec_name(model)
    out = EvalEstimate(n_rows=len(table.rows), model=CallEstimate(name), retrieval=plan)
    price = table_prices.lookup(name, backend.identity())
    out.model.priced = price is not None
    executor = Executor(backend, the_cache)
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    requests = [answer_request(row, backend, params, system_prompt, shots.get(row.index, ())) for row in asked]
    keys = [executor.key(r) for r in requests]
    answers = the_cache.get_many(keys) if the_cache is not None else {}
    count = token_counter(backend)
    for key, request in zip(keys, requests, strict=True):
        out.model.add(request, key in answers, price.price if price else None, count)
    if not judged:
        return out
    judges = _Judges(judge, judged, the_cache, judge_options)
    judge_params = GenerationParams(max_tokens=judge_max_tokens, temperature=0.0)
    for spec, judge_exec in judges.executors.items():
        judge_price = table_prices.lookup(spec, judge_exec.model.identity())
        part = CallEstimate(spec, priced=judge_price is not None)
        judge_count = token_counter(judge_exec.model)
        for row, key in zip(rows, keys, strict=True):
            answer = answers.get(key)
            prediction = answer.text if answer is not None and answer.ok else _PLACEHOLDER * max_tokens
            for metric in (m for m in judged if judges.by_metric[m.name] == spec):
                try:
                    call = metric.call(_judge_fields(row, prediction or ""), {"row": row.id})
                except MissingInputError:
                    continue
                request = call_request(judge_exec.model, call, judge_params)
                cached = answer is not None and the_cache is not None and bool(
                    the_cache.get_stored([judge_exec.key(request)]))
                part.add(request, cached, judge_price.price if judge_price else None, judge_count)
        out.judges.append(part)
    return out
