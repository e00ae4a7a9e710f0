"""Rater pages: ``/rate/<study>?token=…`` shows one blind item at a time; each vote is written at once.

The page is a form (keys 1-4 / a b t x and s for skip press its buttons, see static/app.js): a vote
is a POST that the study API records before the next item is shown, so closing the tab loses
nothing and a reload shows the rater's progress. Which side holds which model is decided and
recorded by :mod:`hyouka.evaluation.human`; the page never sees model names nor the side mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hyouka.evaluation import human
from hyouka.store.studies import StudyNotFoundError, StudyStore
from hyouka.web.markdown import render_markdown

SKIP = "skip"


def _skipped(raw: str | None) -> list[int]:
    out = []
    for part in (raw or "").split(","):
        if part.strip().isdigit():
            out.append(int(part))
    return out


def _call(fn: Callable[[], Any]) -> Any:
    """A study API call, its refusals as HTTP errors: no study 404, a bad token 403, a bad vote 422."""
    try:
        return fn()
    except StudyNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except PermissionError as exc:
        raise HTTPException(403, f"{exc}: open the address your study's organiser sent "
                                 "(hyouka human invite gives each rater one)") from exc
    except (LookupError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from exc


def _token(token: str | None) -> str:
    if not token:
        raise HTTPException(403, "this page needs your rater token (?token=…, from `hyouka human invite`)")
    return token


def rater_router(studies: Callable[[], StudyStore], page: Callable[..., Response]) -> APIRouter:
    """The rater routes over the study tables that ``studies()`` opens."""
    router = APIRouter()

    def current(study: str, token: str, skip: list[int]) -> dict[str, Any]:
        shown = _call(lambda: human.next_pair(study, token, skip=skip, store=studies()))
        done = _call(lambda: human.progress(study, token, store=studies()))
        return {"progress": done, "assignment": shown.for_rater() if shown is not None else None}

    def vote(study: str, token: str, item: Any, choice: Any, score: Any) -> None:
        if item is None or not str(item).isdigit():
            raise HTTPException(422, "a vote needs the item_id of the item shown")
        number = None
        if score not in (None, ""):
            try:
                number = float(score)
            except (TypeError, ValueError) as exc:
                raise HTTPException(422, f"score {score!r} is not a number") from exc
        _call(lambda: human.record_vote(study, token, int(item), None if number is not None else choice,
                                        score=number, store=studies()))

    @router.get("/api/rate/{study}")
    def api_next(study: str, token: str | None = None, skip: str | None = None) -> dict[str, Any]:
        return current(study, _token(token), _skipped(skip))

    @router.post("/api/rate/{study}")
    async def api_vote(study: str, request: Request) -> JSONResponse:
        body = await request.json()
        if not isinstance(body, dict):
            raise HTTPException(422, "send a JSON object: token, item_id, and choice or score")
        token = _token(body.get("token"))
        skip = [int(i) for i in body.get("skip") or [] if str(i).isdigit()]
        if body.get("choice") != SKIP:
            await run_in_threadpool(vote, study, token, body.get("item_id"), body.get("choice"), body.get("score"))
        elif str(body.get("item_id", "")).isdigit():
            skip.append(int(body["item_id"]))
        return JSONResponse(await run_in_threadpool(current, study, token, skip))

    @router.get("/rate/{study}")
    def rate_page(request: Request, study: str, token: str | None = None, skip: str | None = None) -> Response:
        state = current(study, _token(token), _skipped(skip))
        shown = state["assignment"]
        rendered = None
        if shown is not None:
            rendered = {"question": render_markdown(shown["question"]), "left": render_markdown(shown["left"]),
                        "right": render_markdown(shown["right"]) if shown["right"] is not None else None,
                        "rubric": render_markdown(shown["rubric"]) if shown.get("rubric") else None}
        return page(request, "rate.html", study=study, token=token, skip=skip or "", state=state, shown=shown,
                    rendered=rendered)

    @router.post("/rate/{study}")
    async def rate_vote(study: str, request: Request) -> RedirectResponse:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        token = _token(form.get("token"))
        skip = _skipped(form.get("skip"))
        if form.get("choice") == SKIP:
            if str(form.get("item_id", "")).isdigit():
                skip.append(int(form["item_id"]))
        else:
            await run_in_threadpool(vote, study, token, form.get("item_id"), form.get("choice"), form.get("score"))
        query = {"token": token, **({"skip": ",".join(map(str, skip))} if skip else {})}
        return RedirectResponse(f"/rate/{quote(study, safe='')}?{urlencode(query)}", status_code=303)

    return router
