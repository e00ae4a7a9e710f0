"""Recompute a finished run's metrics from its stored records, with no model."""

from __future__ import annotations

from typing import Any

from hyouka.engine.records import compute_aggregates
from hyouka.engine.runner import require_task_run
from hyouka.models.base import Response
from hyouka.store.store import Store
from hyouka.tasks.registry import load_task
from hyouka.tasks.task import Task


def rescore(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """Re-score every sample of a run from its stored responses and rewrite its aggregates.

    Uses the task definition installed now; if it differs from the one the run
    was made with, the run's ``task_hash`` no longer matches and a warning is
    recorded in the run's stats.
    """
    run = store.get_run(run_id)
    require_task_run(run, "rescored")
    config = run["config"]
    spec = load_task(config.get("task_source") or run["task"])  # a task file's path, for runs made from one
    task = Task(spec, family=config["prompt_family"], num_fewshot=config["num_fewshot"], seed=config["seed"])
    mode = run["mode"]
    samples = store.samples(run["id"])
    updates = []
    for sample in samples:
        if sample["status"] not in ("ok", "format_error", "parse_error"):
            continue
        responses = [Response.from_dict(r) for r in sample["responses"]]
        scored = task.score(sample["doc"], mode, responses)
        update = {
            "sample_index": sample["sample_index"],
            "prediction": scored.prediction,
            "extracted": scored.extracted,
            "reference": scored.reference,
            "metrics": scored.metrics,
            "details": scored.details,
            "status": scored.status,
        }
        sample.update(update)
        updates.append(update)
    store.update_sample_scores(run["id"], updates)
    aggregates = compute_aggregates(task, mode, samples, n_total=run["n_samples"], seed=config["seed"])
    store.set_aggregates(run["id"], aggregates)
    stats = dict(run.get("stats") or {})
    stats["task_hash_matches"] = task.spec.content_hash() == run["task_hash"]  # with its family's wording
    store.update_run(run["id"], stats=stats)
    return {a["metric"]: a for a in aggregates}
