"""Agreement between two judges (or a judge and reference judgments) on the same items.

Items are matched by key, e.g. ``(question_id, model, turn)`` for MT-Bench. The statistics
(correlations, exact and within-one agreement, kappa, Krippendorff's alpha, per category) are
:func:`hyouka.ratings.agreement.agreement`; this module finds the scores in runs and judgment files.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

from hyouka.ratings.agreement import Agreement, agreement
from hyouka.store.store import Store

__all__ = ["Agreement", "agreement", "compare_judges", "scores_from_judgments", "scores_from_run"]

Key = Hashable


def scores_from_judgments(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, int], float | None]:
    """``(question_id, model, turn) -> score`` from FastChat judgment records (latest ``tstamp`` wins; -1 is None)."""
    ordered = sorted(records, key=lambda r: float(r.get("tstamp") or 0.0))
    out: dict[tuple[str, str, int], float | None] = {}
    for r in ordered:
        score = r.get("score")
        out[(str(r["question_id"]), str(r["model"]), int(r.get("turn", 1)))] = (
            None if score is None or float(score) < 0 else float(score)
        )
    return out


def scores_from_run(
    store: Store, run_id: str, *, metric: str = "score", categories: dict[Key, str] | None = None
) -> dict[Key, float | None]:
    """Scores of a stored judge run: ``(question_id, model name, turn)`` keys for MT-Bench, else ``(row id,)``.

    ``categories`` (if given) is filled from the samples' documents.
    """
    run = store.get_run(run_id)
    name = str(run["config"].get("subject_name") or run["config"].get("subject_model"))
    out: dict[Key, float | None] = {}
    for s in store.samples(run["id"]):
        doc = s.get("doc") or {}
        key: Key = (str(doc["question_id"]), name, int(doc.get("turn", 1))) if "question_id" in doc else (s["doc_id"],)
        out[key] = (s.get("metrics") or {}).get(metric)
        if categories is not None and doc.get("category"):
            categories[key] = str(doc["category"])
    return out


def _load(source: str | Path, store: Store | None, metric: str, categories: dict[Key, str]) -> dict[Key, float | None]:
    path = Path(source)
    if path.suffix in (".jsonl", ".json") and path.is_file():
        with path.open(encoding="utf-8") as handle:
            return scores_from_judgments(json.loads(line) for line in handle if line.strip())
    if store is None:
        raise ValueError(f"{source} is no judgment file, and no store was given to find a run in")
    return scores_from_run(store, str(source), metric=metric, categories=categories)


def compare_judges(
    a: str | Path,
    b: str | Path,
    *,
    store: Store | None = None,
    metric: str = "score",
    data_dir: str | Path | None = None,
    model: str | None = None,
) -> Agreement:
    """Agreement of two judges, each given as a stored run id or a FastChat judgment file.

    Categories come from the runs' documents or, for judgment files, from the MT-Bench questions in
    ``data_dir``. ``model`` keeps only the judgments of one model (for files judging several).
    """
    categories: dict[Key, str] = {}
    first, second = _load(a, store, metric, categories), _load(b, store, metric, categories)
    if data_dir is not None:
        from hyouka.judge.mt_bench.data import load_questions, mt_bench_dir

        by_question = {q.question_id: q.category for q in load_questions(mt_bench_dir(data_dir))}
        for key in (*first, *second):
            if isinstance(key, tuple) and len(key) == 3 and key[0] in by_question:
                categories.setdefault(key, by_question[key[0]])
    if model is not None:
        first = {k: v for k, v in first.items() if not (isinstance(k, tuple) and len(k) == 3) or k[1] == model}
        second = {k: v for k, v in second.items() if not (isinstance(k, tuple) and len(k) == 3) or k[1] == model}
    return agreement(first, second, categories or None)
