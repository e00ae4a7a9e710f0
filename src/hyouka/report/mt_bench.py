"""Japanese MT-Bench results from the store: per model, the score per category and turn, and each judgment.

A model's MT-Bench run is a ``judge`` run of task ``ja_mt_bench`` in ``single`` mode (see
:mod:`hyouka.judge.mt_bench.single`): one sample per question and turn, with the answer, the
judge's 1-10 score, its justification and raw text. The newest completed run per model and judge
is shown. Means per category and turn are computed in SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyouka.judge.mt_bench.data import CATEGORIES
from hyouka.report.leaderboard import MT_BENCH_TASK, subject_model

if TYPE_CHECKING:
    from hyouka.store.store import Store

__all__ = ["mt_bench_pairwise", "mt_bench_question", "mt_bench_questions", "mt_bench_results"]

MAX_RUNS = 50


def _runs(store: Store, run_ids: list[str] | None) -> list[dict[str, Any]]:
    from hyouka.store.queries import runs_page

    if run_ids:
        return [store.get_run(r) for r in dict.fromkeys(run_ids)]
    found = runs_page(store, task=MT_BENCH_TASK, status="completed", kind="judge", limit=MAX_RUNS * 4).items
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for run in found:  # newest first: the first run of a model and judge is the one shown
        if run.get("mode") == "single":
            newest.setdefault((subject_model(run), run["model"]), run)
    return list(newest.values())[:MAX_RUNS]


def _name(run: dict[str, Any]) -> str:
    return str((run.get("config") or {}).get("subject_name") or subject_model(run))


def _agg(aggregates: dict[str, dict[str, Any]], metric: str) -> dict[str, Any] | None:
    found = aggregates.get(metric)
    if found is None:
        return None
    return {k: found.get(k) for k in ("value", "ci_low", "ci_high", "n_scored", "n_total")}


def mt_bench_results(store: Store, run_ids: list[str] | None = None) -> dict[str, Any]:
    """Each model's score overall, per turn and per category (all turns, turn 1, turn 2), with n.

    ``run_ids``: those runs; default, the newest completed single-grading run of each model and judge.
    """
    from hyouka.store.queries import group_scores

    runs = _runs(store, run_ids)
    ids = [r["id"] for r in runs]
    aggregates = store.all_aggregates(ids)
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in group_scores(store, ids, "score", ("category", "turn")):
        cells[(row["run_id"], str(row["category"]), str(row["turn"]))] = row
    seen = {c for (_, c, _) in cells}
    categories = [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))
    models = []
    for run in runs:
        aggs = aggregates[run["id"]]
        per_category = []
        for category in categories:
            turns = {t: cells.get((run["id"], category, t)) for t in ("1", "2")}
            per_category.append({
                "category": category, "all": _agg(aggs, f"category/{category}"),
                **{f"turn_{t}": None if c is None else {"mean": c["mean"], "n_scored": c["n_scored"], "n": c["n"]}
                   for t, c in turns.items()},
            })
        models.append({"run_id": run["id"], "model": _name(run), "judge": run["model"],
                       "created_at": run["created_at"].isoformat() if run.get("created_at") else None,
                       "score": _agg(aggs, "score"), "turn_1": _agg(aggs, "turn_1"), "turn_2": _agg(aggs, "turn_2"),
                       "categories": per_category})
    models.sort(key=lambda m: -((m["score"] or {}).get("value") or 0.0))
    return {"task": MT_BENCH_TASK, "categories": categories, "models": models}


def mt_bench_questions(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The questions of a run: id, category and the first turn, in the run's order."""
    from hyouka.store.queries import group_scores

    rows = group_scores(store, [run_id], "score", ("question_id", "category"))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    out = [{"question_id": str(r["question_id"]), "category": str(r["category"])} for r in rows]
    out.sort(key=lambda q: (order.get(q["category"], len(order)), _numeric(q["question_id"])))
    return out


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 30, value)


def mt_bench_question(store: Store, question_id: str, run_ids: list[str] | None = None) -> dict[str, Any]:
    """One question: its turns, and per model each turn's answer, the judge's score, justification and raw text."""
    from hyouka.store.queries import documents

    runs = _runs(store, run_ids)
    ids = [r["id"] for r in runs]
    found = documents(store, ids, [f"{question_id}:1", f"{question_id}:2"])
    if not found:
        raise LookupError(f"no MT-Bench question {question_id!r} in these runs")
    first = next(iter(next(iter(found.values())).values()))
    doc = first.get("doc") or {}
    answers = []
    for run in runs:
        turns = []
        for turn in (1, 2):
            sample = found.get(f"{question_id}:{turn}", {}).get(run["id"])
            if sample is None:
                turns.append(None)
                continue
            details = sample.get("details") or {}
            judge = details.get("judge") or {}
            turns.append({"turn": turn, "answer": sample.get("output"), "status": sample["status"],
                          "score": (sample.get("metrics") or {}).get("score"), "error": sample.get("error"),
                          "justification": details.get("justification"), "raw": judge.get("raw"),
                          "reference": sample.get("reference"), "judge_prompt_name": details.get("judge_prompt_name")})
        answers.append({"run_id": run["id"], "model": _name(run), "judge": run["model"], "turns": turns})
    return {"question_id": str(question_id), "category": doc.get("category"), "turns": list(doc.get("turns") or []),
            "answers": answers}


PAIR_METRICS = ("win_rate_a", "win_rate_b", "tie_rate", "inconsistency_rate")


def mt_bench_pairwise(store: Store) -> list[dict[str, Any]]:
    """The newest completed pairwise MT-Bench run of each (model A, model B, judge): its win, tie and
    inconsistency rates (ties count half a win), as the run stored them (:mod:`hyouka.judge.mt_bench.pairwise`)."""
    from hyouka.store.queries import runs_page

    found = runs_page(store, task=MT_BENCH_TASK, status="completed", kind="pairwise", limit=MAX_RUNS * 4).items
    newest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in found:  # newest first
        config = run.get("config") or {}
        if run.get("mode") == "pairwise":
            newest.setdefault((str(config.get("model_a")), str(config.get("model_b")), run["model"]), run)
    runs = list(newest.values())[:MAX_RUNS]
    aggregates = store.all_aggregates([r["id"] for r in runs])
    return [{"run_id": r["id"], "model_a": (r.get("config") or {}).get("model_a"),
             "model_b": (r.get("config") or {}).get("model_b"), "judge": r["model"],
             **{m: _agg(aggregates.get(r["id"], {}), m) for m in PAIR_METRICS}} for r in runs]
