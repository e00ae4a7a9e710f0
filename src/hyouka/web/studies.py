"""The human tier in the dashboard: each study's ratings (Bradley-Terry, Elo, win rates) and agreement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from hyouka.evaluation import human_results
from hyouka.ratings import RatingsUndefinedError
from hyouka.store.studies import StudyNotFoundError, StudyStore

ROUNDS = 1000  # bootstrap rounds, as `hyouka human ratings`


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def study_router(studies: Callable[[], StudyStore], page: Callable[..., Response]) -> APIRouter:
    router = APIRouter()
    cache: dict[tuple, Any] = {}

    def call(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except StudyNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        except (LookupError, ValueError, RatingsUndefinedError) as exc:
            raise HTTPException(422, str(exc)) from exc

    def overview(name: str) -> dict[str, Any]:
        found = call(lambda: human_results.study_overview(name, store=studies()))
        return {**found, "created_at": _json(found["created_at"])}

    def ratings(name: str, shown: dict[str, Any]) -> dict[str, Any]:
        """The ratings, computed again only when the study's votes or flags changed."""
        key = ("ratings", name, shown["n_votes"], tuple((r["votes"], r["flagged"]) for r in shown["raters"]))
        if key not in cache:
            cache[key] = call(lambda: human_results.study_ratings(name, rounds=ROUNDS, store=studies()))
        return cache[key]

    def agreement(name: str, judge_runs: list[str]) -> dict[str, Any] | None:
        runs = [r.strip() for value in judge_runs for r in value.split(",") if r.strip()]
        if not runs:
            return None
        return call(lambda: human_results.study_agreement(name, runs, store=studies()))

    @router.get("/api/studies")
    def api_studies() -> dict[str, Any]:
        listed = human_results.list_studies(studies())
        return {"studies": [{**s, "created_at": _json(s["created_at"])} for s in listed]}

    @router.get("/studies")
    def studies_page(request: Request) -> Response:
        listed = [overview(s["study"]) for s in human_results.list_studies(studies())]
        return page(request, "studies.html", studies=listed, nav="studies")

    @router.get("/api/studies/{name}")
    def api_study(name: str, judge_run: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        shown = overview(name)
        return {"study": shown, "ratings": ratings(name, shown), "agreement": agreement(name, judge_run or [])}

    @router.get("/studies/{name}")
    def study_page(request: Request, name: str, judge_run: Annotated[list[str] | None, Query()] = None) -> Response:
        data = api_study(name, judge_run)
        return page(request, "study.html", **data, judge_runs=judge_run or [], nav="studies")

    return router
