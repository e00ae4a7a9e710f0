"""The MT-Bench page: each model's score per category for turn 1 and turn 2, and each judgment's text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from hyouka.report.mt_bench import mt_bench_pairwise, mt_bench_question, mt_bench_questions, mt_bench_results
from hyouka.store.store import RunNotFoundError, Store

Runs = Annotated[list[str] | None, Query()]
SCALE_MAX = 10.0  # MT-Bench grades 1-10


def _bars(results: dict[str, Any], turn: str) -> dict[str, Any]:
    """Grouped bars per category (a bar per model) for one turn, as lengths on a 0-10 scale."""
    rows = []
    for k, category in enumerate(results["categories"]):
        bars = []
        for m, model in enumerate(results["models"]):
            cell = model["categories"][k][f"turn_{turn}"]
            mean = cell["mean"] if cell else None
            bars.append({"model": model["model"], "index": m, "mean": mean,
                         "width": 0.0 if mean is None else round(300 * mean / SCALE_MAX, 1)})
        rows.append({"category": category, "bars": bars})
    return {"turn": turn, "rows": rows, "band": 6 + 12 * max(1, len(results["models"]))}


def mt_bench_router(db: Store, page: Callable[..., Response]) -> APIRouter:
    router = APIRouter()

    def call(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RunNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.get("/api/mt-bench")
    def api_results(runs: Runs = None) -> dict[str, Any]:
        return call(lambda: mt_bench_results(db, runs))

    @router.get("/api/mt-bench/pairwise")
    def api_pairwise() -> dict[str, Any]:
        return {"pairs": mt_bench_pairwise(db)}

    @router.get("/api/mt-bench/questions/{question_id}")
    def api_question(question_id: str, runs: Runs = None) -> dict[str, Any]:
        return call(lambda: mt_bench_question(db, question_id, runs))

    @router.get("/mt-bench")
    def results_page(request: Request, runs: Runs = None, question: str | None = None) -> Response:
        results = api_results(runs)
        ids = [m["run_id"] for m in results["models"]]
        questions = mt_bench_questions(db, ids[0]) if ids else []
        chosen = question or (questions[0]["question_id"] if questions else None)
        shown = api_question(chosen, ids) if chosen else None
        charts = [_bars(results, t) for t in ("1", "2")] if ids else []
        return page(request, "mt_bench.html", results=results, charts=charts, questions=questions, shown=shown,
                    chosen=chosen, runs=runs or [], pairs=api_pairwise()["pairs"], nav="mt-bench")

    return router
