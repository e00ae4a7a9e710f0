"""What the pages and their JSON twins show, as plain data: read through the report and store APIs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hyouka.report.compare import compare_runs
from hyouka.report.leaderboard import build_leaderboards, subject_model
from hyouka.report.safe import scrub
from hyouka.report.summary import board_stats
from hyouka.report.views import load_views
from hyouka.store.queries import Page, aligned_page, runs_page, samples_page
from hyouka.store.store import Store

RUN_FIELDS = ("id", "created_at", "finished_at", "status", "kind", "model", "task", "task_version", "task_hash",
              "mode", "suite", "config", "config_hash", "model_identity", "versions", "n_samples", "duration_s",
              "stats", "error", "owner", "heartbeat_at", "job_id")


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def run_data(run: dict[str, Any]) -> dict[str, Any]:
    """A run's row for display: secrets in its configuration redacted."""
    out = {k: _json(run.get(k)) for k in RUN_FIELDS}
    for key in ("config", "model_identity", "stats"):
        out[key] = scrub(out[key] or {})
    out["subject"] = subject_model(run)  # the model evaluated (a judge run's model is its judge)
    return out


def leaderboard_data(store: Store, prices: str | None = None) -> list[dict[str, Any]]:
    """Every table of :func:`build_leaderboards`, each row with its cells and its cost and latency (read from its
    runs' stored summaries: no sample is read, see :func:`hyouka.report.views.load_views`)."""
    boards = build_leaderboards(store)
    run_ids = {i for b in boards for row in b.rows for i in row.run_ids}
    views = load_views(store, sorted(run_ids), prices=prices, samples=False) if run_ids else []
    tables = []
    for board in boards:
        stats = board_stats(board, views)
        rows = []
        for record, stat in zip(board.to_records(), stats, strict=True):
            rows.append({
                "model": record["model"], "setting": record["setting"], "settings": scrub(record["settings"]),
                "cells": {t: record[t] for t in board.tasks},
                "average": record["average"], "average_ci_low": record["average_ci_low"],
                "average_ci_high": record["average_ci_high"], "partial": record["partial"],
                "missing": record["missing"], "cost_usd": stat.cost_usd, "judge_cost_usd": stat.judge_cost_usd,
                "total_tokens": stat.total_tokens, "n_calls": stat.n_calls,
                "latency_p50": stat.latency_p50, "latency_p95": stat.latency_p95,
            })
        columns = []
        for task in board.tasks:
            cell = next((r["cells"][task] for r in rows if r["cells"][task]), None)
            columns.append({"task": task, "metric": cell["metric"] if cell else board.metrics.get(task, ""),
                            "lower_is_better": bool(cell and cell["lower_is_better"])})
        tables.append({"title": board.title, "suite": board.suite, "tasks": board.tasks, "columns": columns,
                       "metrics": board.metrics, "has_average": board.has_average, "notes": board.notes,
                       "rows": rows})
    return tables


def runs_data(store: Store, **filters: Any) -> dict[str, Any]:
    page = runs_page(store, **filters)
    return _page(page, [run_data(r) for r in page.items])


def _finish_reasons(sample: dict[str, Any]) -> list[str]:
    return [r["finish_reason"] for r in sample.get("responses") or []
            if isinstance(r, dict) and r.get("finish_reason")]


def sample_data(sample: dict[str, Any]) -> dict[str, Any]:
    """A stored sample for display: the document, the output and its scores, the judge's text, the cost."""
    details = sample.get("details") or {}
    answer = details.get("answer") if isinstance(details.get("answer"), dict) else None
    reasons = _finish_reasons(sample)
    judged = details.get("judge") if isinstance(details.get("judge"), dict) else {}
    judgments = {name: {"score": d.get("score"), "justification": d.get("justification"), "status": d.get("status")}
                 for name, d in judged.items() if isinstance(d, dict) and "justification" in d}
    return {
        "sample_index": sample["sample_index"], "doc_id": sample["doc_id"], "doc": sample.get("doc") or {},
        "prompt": sample.get("prompt") or "", "output": sample.get("output"), "extracted": sample.get("extracted"),
        "prediction": sample.get("prediction"), "reference": sample.get("reference"),
        "metrics": sample.get("metrics") or {}, "status": sample["status"], "error": sample.get("error"),
        "justification": details.get("justification"), "answer": answer.get("text") if answer else None,
        "latency_s": sample.get("latency_s"), "prompt_tokens": sample.get("prompt_tokens"),
        "completion_tokens": sample.get("completion_tokens"), "cost_usd": sample.get("cost_usd"),
        "finish_reasons": reasons, "truncated": "length" in reasons, "judgments": judgments,
    }


def samples_data(store: Store, run_id: str, **filters: Any) -> dict[str, Any]:
    page = samples_page(store, run_id, **filters)
    return _page(page, [sample_data(s) for s in page.items])


def compare_data(store: Store, runs: list[dict[str, Any]], *, only: str = "all", metric: str | None = None,
                 offset: int = 0, limit: int = 20, paired: bool = True) -> dict[str, Any]:
    """Runs of one task side by side, document by document; for two runs, the paired differences too."""
    tasks = {r["task"] for r in runs}
    if len(tasks) > 1:
        raise ValueError(f"side by side needs runs of one task; these are of {', '.join(sorted(tasks))}")
    data = {str(((r.get("config") or {}).get("data") or {}).get("sha256")) for r in runs}
    if len(data) > 1:  # `hyouka eval` data sets are named by their file: the same name may hold other rows
        raise ValueError(f"side by side needs runs over the same examples; these runs of {tasks.pop()} read "
                         "different data (their data files' sha256 differ)")
    ids = [r["id"] for r in runs]
    page = aligned_page(store, ids, only=only, metric=metric, offset=offset, limit=limit)
    items = []
    for item in page.items:
        first = next((s for s in item["samples"].values() if s is not None), None)
        items.append({"doc_id": item["doc_id"], "doc": (first or {}).get("doc") or {},
                      "reference": (first or {}).get("reference"),
                      "answers": [None if item["samples"][i] is None else sample_data(item["samples"][i])
                                  for i in ids]})
    out = _page(page, items)
    out["runs"] = [run_data(r) for r in runs]
    out["paired"] = None
    if paired and len(runs) == 2:
        comparison = compare_runs(store, ids[0], ids[1], max_changed=0)
        out["paired"] = {"n_pairs": comparison.n_pairs, "paired_by": comparison.paired_by,
                         "metrics": [vars(m) | {"significant": m.significant} for m in comparison.metrics]}
    return out


def _page(page: Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "total": page.total, "offset": page.offset, "limit": page.limit}
