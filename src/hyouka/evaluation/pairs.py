"""``hyouka.pairwise``: two models' answers to the same questions, judged pairwise in both orders.

Answers come from the models (the data's inputs sent as one user message) or from two
prediction columns. The judge prompt is MT-Bench's ``pair-v2`` (``pair-math-v1`` with the
ground truth as reference answer when the data has one). A verdict that flips with the order
counts as a tie and is reported as inconsistent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.evaluation.backends import open_cache, resolve_model, spec_name
from hyouka.evaluation.core import answer_request
from hyouka.evaluation.data import EvalRow, load_table, predictions_name
from hyouka.judge.grading import JudgeCall
from hyouka.judge.mt_bench.prompts import verdict_call
from hyouka.judge.pairwise import PairOutcome, pair_metrics, pair_summaries, run_pairs, win_rates
from hyouka.judge.prompts import mt_bench_prompt, mt_bench_prompt_version
from hyouka.judge.runs import RunRecorder, call_stats
from hyouka.models.base import GenerationParams, Message, Model, Response
from hyouka.pricing.table import PriceTable
from hyouka.store.store import Store

__all__ = ["PairwiseResult", "pairwise"]

Progress = Callable[[int, int], None]


@dataclass
class PairwiseResult:
    """Win rates (ties as half a win), tie and inconsistency rates, and the per-row verdicts."""

    run_id: str
    model_a: str
    model_b: str
    judge: str
    metrics: dict[str, float | None]
    aggregates: dict[str, dict[str, Any]]
    win_rates: dict[str, Any]
    table: pd.DataFrame
    resumed: bool = False
    calls: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model_a": self.model_a, "model_b": self.model_b, "judge": self.judge,
                "metrics": self.metrics, "aggregates": self.aggregates, "win_rates": self.win_rates,
                "resumed": self.resumed, "calls": self.calls}


def _messages(row: EvalRow, first: str, second: str, language: str) -> tuple[Message, ...]:
    reference = row.ground_truth_text
    prompt = mt_bench_prompt("pair-math-v1" if reference else "pair-v2", language)
    values = {"question": row.inputs or "", "answer_a": first, "answer_b": second, "ref_answer_1": reference or ""}
    return (Message("system", prompt["system_prompt"]), Message("user", prompt["prompt_template"].format(**values)))


def _answers(executor: Executor | None, rows: Sequence[EvalRow], column: str | None, params: GenerationParams,
             table_rows: dict[int, dict[str, Any]]) -> dict[int, Response]:
    if executor is None:
        return {r.index: Response(text=str(table_rows[r.index].get(column) or "")) for r in rows}
    requests = [answer_request(r, executor.model, params) for r in rows]
    return {rows[i].index: resp for i, resp in executor.execute(requests)}


def _record(row: EvalRow, a: Response, b: Response, outcome: PairOutcome | None) -> dict[str, Any]:
    failed = next((r for r in (a, b) if not r.ok), None)
    if outcome is None:
        status, error = (failed.error_type or "api_error", failed.error) if failed else ("no_answer", None)
    else:
        status, error = outcome.status, outcome.error
    return {
        "sample_index": row.index, "doc_id": row.id,
        "doc": {"inputs": row.inputs, "ground_truth": row.ground_truth, "row": row.fields},
        "prompt": row.inputs or "", "requests": [],
        "responses": [*outcome.ab.responses, *outcome.ba.responses] if outcome else [],
        "output": None, "extracted": None, "prediction": outcome.winner if outcome else None,
        "reference": row.ground_truth, "metrics": pair_metrics(outcome) if outcome else {},
        "details": {"answer_a": a.to_dict(), "answer_b": b.to_dict(), "pair": outcome.to_dict() if outcome else None},
        "status": status, "error": error, "latency_s": None, "prompt_tokens": None, "completion_tokens": None,
    }


def pairwise(
    models: Sequence[str | Model | None],
    data: str | Path | pd.DataFrame | Sequence[dict[str, Any]],
    *,
    judge: str | Model,
    inputs: str | None = None,
    targets: str | None = None,
    predictions: Sequence[str | None] = (None, None),
    id_column: str | None = None,
    language: str = "ja",
    max_tokens: int = 256,
    judge_max_tokens: int = 1024,
    limit: int | None = None,
    store: Store | str | None = None,
    cache: ResponseCache | str | Path | bool = True,
    resume: str | None = None,
    progress: Progress | None = None,
    judge_options: dict[str, Any] | None = None,
    prices: PriceTable | str | Path | None = None,
    **model_options: Any,
) -> PairwiseResult:
    """Compare two models (or two prediction columns: ``models=[None, None]``, ``predictions=[col_a, col_b]``)."""
    if len(models) != 2 or len(predictions) != 2:
        raise ValueError("pairwise takes exactly two models (or two prediction columns)")
    table = load_table(data, inputs=inputs, targets=targets, id_column=id_column, limit=limit)
    fields = {r.index: r.fields for r in table.rows}
    the_cache = open_cache(cache)
    the_store = store if isinstance(store, Store) else Store(store)
    backends = [resolve_model(m, model_options) if m is not None else None for m in models]
    specs = [spec_name(m) if m is not None else predictions_name(table.source, str(p))
             for m, p in zip(models, predictions, strict=True)]
    for backend, column in zip(backends, predictions, strict=True):
        if backend is None and (column is None or column not in (table.rows[0].fields if table.rows else {})):
            raise ValueError(f"no model and no prediction column {column!r} in the data")
    executors = [Executor(b, the_cache) if b is not None else None for b in backends]
    judge_backend = resolve_model(judge, judge_options)
    judge_exec = Executor(judge_backend, the_cache)
    config = {
        "task": f"pairwise:{table.source}", "mode": "pairwise", "model_a": specs[0], "model_b": specs[1],
        "subject_model": f"{specs[0]} vs {specs[1]}", "judge": spec_name(judge),
        "judge_identity": judge_backend.identity(),
        "identities": [b.identity() if b else None for b in backends],
        "data": {"source": table.source, "sha256": table.digest, "columns": table.columns},
        "predictions": list(predictions), "limit": limit, "max_tokens": max_tokens,
        "judge_max_tokens": judge_max_tokens, "language": language, "prompts_version": mt_bench_prompt_version(),
    }
    recorder = RunRecorder(
        the_store, kind="pairwise", model=spec_name(judge), task=config["task"], mode="pairwise", config=config,
        n_samples=len(table.rows), executors=[e for e in (*executors, judge_exec) if e is not None], resume=resume,
        model_identity=judge_backend.identity(), prices=prices,
    )
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    names = tuple(b.name if b is not None else str(p) for b, p in zip(backends, predictions, strict=True))
    with recorder:
        todo = [r for r in table.rows if r.index not in recorder.done]
        got = [_answers(e, todo, p, params, fields) for e, p in zip(executors, predictions, strict=True)]
        ready = []
        for row in todo:
            a, b = got[0][row.index], got[1][row.index]
            if a.ok and b.ok:
                ready.append(row)
            else:
                recorder.add(_record(row, a, b, None))

        def make_call(k: int, messages: tuple[Message, ...], order: str) -> JudgeCall:
            first, second = names if order == "ab" else names[::-1]
            return verdict_call(messages, {"row": ready[k].id, "model_a": first, "model_b": second}, language)

        pairs = [(got[0][r.index].text or "", got[1][r.index].text or "") for r in ready]
        done = len(table.rows) - len(ready)
        judge_params = GenerationParams(max_tokens=judge_max_tokens, temperature=0.0)
        for k, outcome in run_pairs(judge_exec, pairs, lambda k, x, y: _messages(ready[k], x, y, language),
                                    make_call, judge_params):
            row = ready[k]
            recorder.add(_record(row, got[0][row.index], got[1][row.index], outcome))
            done += 1
            if progress:
                progress(done, len(table.rows))
        samples = recorder.samples()
        summaries = pair_summaries(samples)
        rates = win_rates([s["details"].get("pair") or {"status": s["status"]} for s in samples])
        calls = call_stats(model_a=executors[0], model_b=executors[1], judge=judge_exec)
        recorder.finish([s.to_row() for s in summaries],
                        {"statuses": dict(Counter(s["status"] for s in samples)), "calls": calls, "win_rates": rates})
    aggregates = {s.metric: s.to_dict() for s in summaries}
    return PairwiseResult(
        run_id=recorder.run_id, model_a=specs[0], model_b=specs[1], judge=spec_name(judge),
        metrics={k: v["value"] for k, v in aggregates.items()}, aggregates=aggregates, win_rates=rates,
        table=_table(samples), resumed=recorder.resumed, calls=calls,
    )


def _table(samples: Sequence[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for s in samples:
        pair = s["details"].get("pair") or {}
        rows.append({
            "id": s["doc_id"], "inputs": s["doc"].get("inputs"),
            "answer_a": (s["details"].get("answer_a") or {}).get("text"),
            "answer_b": (s["details"].get("answer_b") or {}).get("text"),
            "winner": pair.get("winner"), "consistent": pair.get("consistent"),
            "verdict_ab": pair.get("verdict_ab"), "verdict_ba": pair.get("verdict_ba"),
            "status": s["status"], "error": s.get("error"),
        })
    return pd.DataFrame(rows)
