"""Agreement between two judges (or a judge and reference judgments) on the same items.

Items are matched by key, e.g. ``(question_id, model, turn)`` for MT-Bench. Reported:
Pearson, Spearman and Kendall correlations, the share of identical scores, the share within
one point, the mean difference, overall and per category. An undefined correlation (fewer
than two items, a constant side) is ``None`` with the reason in ``note``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hyouka.metrics.correlation import degenerate_reason, kendall, pearson, spearman
from hyouka.store.store import Store

__all__ = ["Agreement", "agreement", "compare_judges", "scores_from_judgments", "scores_from_run"]

Key = Hashable


@dataclass
class Agreement:
    """How far two sets of scores on the same items agree."""

    n: int
    n_only_a: int
    n_only_b: int
    pearson: float | None
    spearman: float | None
    kendall: float | None
    exact: float | None
    within_one: float | None
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None  # mean of (a - b)
    note: str | None = None
    per_category: dict[str, Agreement] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_category"] = {k: v.to_dict() for k, v in self.per_category.items()}
        return out


def _stats(x: np.ndarray, y: np.ndarray, only_a: int, only_b: int) -> Agreement:
    n = int(x.size)
    if n == 0:
        return Agreement(0, only_a, only_b, None, None, None, None, None, None, None, None, note="no item in common")
    reason = degenerate_reason(x, y)
    diff = x - y
    return Agreement(
        n=n,
        n_only_a=only_a,
        n_only_b=only_b,
        pearson=None if reason else pearson(x, y),
        spearman=None if reason else spearman(x, y),
        kendall=None if reason else kendall(x, y),
        exact=float(np.mean(diff == 0)),
        within_one=float(np.mean(np.abs(diff) <= 1)),
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        mean_diff=float(diff.mean()),
        note=f"correlations undefined: {reason}" if reason else None,
    )


def agreement(
    a: Mapping[Key, float | None],
    b: Mapping[Key, float | None],
    categories: Mapping[Key, str] | None = None,
) -> Agreement:
    """Agreement of scores ``a`` and ``b`` on the keys both scored; per category when ``categories`` maps keys."""
    scored_a = {k: float(v) for k, v in a.items() if v is not None}
    scored_b = {k: float(v) for k, v in b.items() if v is not None}
    common = [k for k in scored_a if k in scored_b]

    def over(keys: list[Key]) -> Agreement:
        x = np.array([scored_a[k] for k in keys], dtype=float)
        y = np.array([scored_b[k] for k in keys], dtype=float)
        return _stats(x, y, len(scored_a) - len(common), len(scored_b) - len(common))

    out = over(common)
    if categories is not None:
        by_cat: dict[str, list[Key]] = defaultdict(list)
        for k in common:
            by_cat[categories.get(k, "unknown")].append(k)
        out.per_category = {c: over(keys) for c, keys in sorted(by_cat.items())}
        for sub in out.per_category.values():
            sub.n_only_a = sub.n_only_b = 0
    return out


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
