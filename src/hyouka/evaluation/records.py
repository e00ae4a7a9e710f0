"""One evaluated row as a store record, and the per-row table built back from records.

In a ``judge`` run the store's ``model`` is the judge, so a record's ``responses``, latency and
tokens are the judge's calls; the evaluated model's answer (with its own latency and tokens)
is kept in ``details['answer']``. Each judge metric keeps its score, justification, status,
raw text (and the repair's) in ``details['judge'][metric]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from hyouka.evaluation.data import EvalRow
from hyouka.judge.grading import Judgment
from hyouka.judge.runs import sum_optional
from hyouka.models.base import Response

__all__ = ["row_record", "sample_status", "table_from_samples"]

_CALL_FAILED_FIRST = ("api_error", "timeout", "not_recorded")


def _detail(result: Judgment | str, judge: str | None) -> dict[str, Any]:
    if isinstance(result, str):  # "missing_input: <why>"
        status, _, error = result.partition(": ")
        return {"score": None, "justification": None, "status": status, "raw": None, "error": error, "judge": judge}
    return {
        "score": result.value if result.ok else None,
        "justification": result.justification,
        "status": result.status,
        "raw": result.raw,
        "error": result.error,
        "repaired": result.repaired,
        "repair_raw": result.repair_raw,
        "latency_s": result.latency_s,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cached": result.cached,
        "judge": judge,
    }


def sample_status(
    answer: Response | None, prediction: str | None, results: Mapping[str, Judgment | str]
) -> tuple[str, str | None]:
    """A row's status: its answer call's failure, else its judge calls' worst outcome, else ``ok``."""
    if answer is not None and not answer.ok:
        return answer.error_type or "api_error", answer.error
    if prediction is None:
        return "no_prediction", "the row has no prediction"
    judgments = [r for r in results.values() if isinstance(r, Judgment)]
    failed = [j for j in judgments if j.status not in ("ok", "parse_error")]
    failed.sort(key=lambda j: j.status not in _CALL_FAILED_FIRST)
    if failed:
        return failed[0].status, failed[0].error
    unreadable = next((j for j in judgments if j.status == "parse_error"), None)
    if unreadable is not None:
        return "parse_error", unreadable.error
    return "ok", None


def row_record(
    row: EvalRow,
    answer: Response | None,
    prediction: str | None,
    scores: Mapping[str, float],
    results: Mapping[str, Judgment | str],
    judge_of: Mapping[str, str],
    *,
    kind: str,
) -> dict[str, Any]:
    """The store record of one row."""
    status, error = sample_status(answer, prediction, results)
    metrics = dict(scores)
    details: dict[str, Any] = {"answer": answer.to_dict() if answer is not None else None, "judge": {}}
    judge_responses: list[dict[str, Any]] = []
    for name, result in results.items():
        details["judge"][name] = _detail(result, judge_of.get(name))
        if isinstance(result, Judgment):
            judge_responses += result.responses
            if result.ok:
                metrics[name] = float(result.value)
    own = [answer.to_dict()] if answer is not None else []
    responses = judge_responses if kind == "judge" else own
    return {
        "sample_index": row.index,
        "doc_id": row.id,
        "doc": {"inputs": row.inputs, "ground_truth": row.ground_truth, "context": row.context, "row": row.fields},
        "prompt": row.inputs or "",
        "requests": [],
        "responses": responses,
        "output": prediction,
        "extracted": None,
        "prediction": prediction,
        "reference": row.ground_truth,
        "metrics": metrics,
        "details": details,
        "status": status,
        "error": error,
        "latency_s": sum_optional(r.get("latency_s") for r in responses),
        "prompt_tokens": sum_optional(r.get("prompt_tokens") for r in responses),
        "completion_tokens": sum_optional(r.get("completion_tokens") for r in responses),
    }


def table_from_samples(
    samples: Sequence[dict[str, Any]], heuristics: Sequence[str], judge_metrics: Sequence[str]
) -> pd.DataFrame:
    """The per-row table: inputs, ground truth, context, outputs, status, cost, and every metric's columns."""
    rows = []
    for s in samples:
        doc = s.get("doc") or {}
        details = s.get("details") or {}
        answer = details.get("answer") or {}
        metrics = s.get("metrics") or {}
        row: dict[str, Any] = {
            "id": s["doc_id"],
            "inputs": doc.get("inputs"),
            "ground_truth": s.get("reference"),
            "context": doc.get("context"),
            "outputs": s.get("prediction"),
            "status": s["status"],
            "error": s.get("error"),
            "latency_s": answer.get("latency_s"),
            "prompt_tokens": answer.get("prompt_tokens"),
            "completion_tokens": answer.get("completion_tokens"),
        }
        for name in heuristics:
            if name not in ("bleu", "chrf"):
                row[f"{name}/score"] = metrics.get(name)
        for name in judge_metrics:
            judged = (details.get("judge") or {}).get(name) or {}
            row[f"{name}/score"] = judged.get("score")
            row[f"{name}/justification"] = judged.get("justification")
            row[f"{name}/status"] = judged.get("status", "not_judged")
            row[f"{name}/raw"] = judged.get("raw")
        rows.append(row)
    return pd.DataFrame(rows)
