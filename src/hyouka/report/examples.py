"""Per-example rows (inputs, outputs, scores, justifications, cost) and per-category judge scores.

The same rows feed the HTML report, MLflow's ``eval_results_table.json`` and W&B tables.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hyouka.report.views import RunView

_JUSTIFICATION_KEYS = ("justification", "explanation", "rationale", "reasoning", "reason", "feedback")
_HEADLINES = ("score", "mean_score")


def justification(details: dict[str, Any] | None) -> str | None:
    """A judge's justification from a sample's details.

    hyouka's judge runs keep one per judged metric in ``details['judge'][metric]``; they are
    joined as ``metric: text`` lines. Otherwise the first found at the top level or below.
    """
    if not isinstance(details, dict):
        return None
    judged = details.get("judge")
    if isinstance(judged, dict) and judged and all(isinstance(v, dict) for v in judged.values()):
        found = {name: v["justification"] for name, v in judged.items() if isinstance(v.get("justification"), str)}
        if len(found) == 1:
            return next(iter(found.values()))
        if found:
            return "\n".join(f"{name}: {text}" for name, text in found.items())
    for key in _JUSTIFICATION_KEYS:
        if isinstance(details.get(key), str):
            return details[key]
    for value in details.values():
        if isinstance(value, dict):
            found = justification(value)
            if found:
                return found
        if isinstance(value, list):
            found_all = [j for j in (justification(v) for v in value if isinstance(v, dict)) if j]
            if found_all:
                return "\n---\n".join(found_all)
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def example_row(view: RunView, sample: dict[str, Any]) -> dict[str, Any]:
    """One sample as a flat, JSON-ready row (metrics as ``metric/<name>`` columns)."""
    doc = sample.get("doc") or {}
    row: dict[str, Any] = {
        "run_id": view.id,
        "model": view.subject,
        "judge": view.model if view.kind != "benchmark" else None,
        "task": view.task,
        "sample_index": sample["sample_index"],
        "doc_id": sample.get("doc_id"),
        "category": doc.get("category") if isinstance(doc, dict) else None,
        "input": sample.get("prompt") or "",
        "output": sample.get("output"),
        "extracted": sample.get("extracted"),
        "prediction": _text(sample.get("prediction")),
        "reference": _text(sample.get("reference")),
        "justification": justification(sample.get("details")),
        "status": sample.get("status"),
        "error": sample.get("error"),
        "latency_s": sample.get("latency_s"),
        "prompt_tokens": sample.get("prompt_tokens"),
        "completion_tokens": sample.get("completion_tokens"),
        "cost_usd": sample.get("cost_usd"),
    }
    for name, value in (sample.get("metrics") or {}).items():
        row[f"metric/{name}"] = value
    return row


def example_rows(views: Sequence[RunView], limit_per_run: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for view in views:
        samples = view.samples if limit_per_run is None else view.samples[:limit_per_run]
        rows.extend(example_row(view, s) for s in samples)
    return rows


def headline_metric(view: RunView) -> str | None:
    """The per-sample metric a run is judged by: ``score`` for judges, else its first aggregate."""
    names = [n for s in view.samples for n in (s.get("metrics") or {})]
    if not names:
        return None
    for name in (*_HEADLINES, *view.aggregates):
        if name in names:
            return name
    return names[0]


def category_scores(views: Sequence[RunView]) -> dict[str, dict[str, float]]:
    """Mean headline score per document category, per evaluated model (runs whose docs have a category)."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for view in views:
        if view.kind == "pairwise":
            continue
        metric = headline_metric(view)
        if metric is None:
            continue
        for sample in view.samples:
            doc = sample.get("doc") or {}
            category = doc.get("category") if isinstance(doc, dict) else None
            value = (sample.get("metrics") or {}).get(metric)
            if category and isinstance(value, (int, float)) and not math.isnan(value):
                sums[view.subject][str(category)].append(float(value))
    return {model: {c: sum(v) / len(v) for c, v in by_cat.items()} for model, by_cat in sums.items() if by_cat}
