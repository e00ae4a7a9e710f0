"""The ladders in the dashboard: each stored ladder's recommendation, cells and charts (read through
:func:`hyouka.evaluation.ladder.load_ladder`, drawn by :mod:`hyouka.report.ladder_charts`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from hyouka.evaluation.ladder import list_ladders, load_ladder
from hyouka.store.ladders import LadderNotFoundError
from hyouka.store.queries import results_signature
from hyouka.store.store import Store

KEPT = 8  # ladders whose measures and charts are kept drawn


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def ladder_router(db: Store, page: Callable[..., Response], prices: str | None = None) -> APIRouter:
    router = APIRouter()
    cache: dict[str, Any] = {}

    def shown(ladder_id: str) -> dict[str, Any]:
        """The ladder measured from its runs and its charts, drawn again only when the store's results change."""
        key = (ladder_id, results_signature(db))
        if key not in cache:
            try:
                result = load_ladder(ladder_id, store=db, prices=prices)
            except LadderNotFoundError as exc:
                raise HTTPException(404, str(exc)) from exc
            charts, error = [], None
            try:
                from hyouka.report.ladder_charts import ladder_charts

                charts = [{"key": c.key, "title": c.title, "caption": c.caption, "png": c.to_bytes("png")}
                          for c in ladder_charts(result)]
            except ImportError as exc:  # the report extra (matplotlib) is missing
                error = str(exc)
            while len(cache) >= KEPT:  # the oldest drawings go first
                cache.pop(next(iter(cache)))
            cache[key] = {"result": result.to_dict(), "charts": charts, "error": error}
        return cache[key]

    def api_view(ladder_id: str) -> dict[str, Any]:
        found = shown(ladder_id)
        the_id = found["result"]["ladder_id"]
        charts = [{"key": c["key"], "title": c["title"], "caption": c["caption"],
                   "url": f"/ladders/{the_id}/charts/{c['key']}.png"} for c in found["charts"]]
        return {**found["result"], "charts": charts, "charts_error": found["error"]}

    @router.get("/api/ladders")
    def api_ladders() -> dict[str, Any]:
        return {"ladders": [{k: _json(v) for k, v in row.items()} for row in list_ladders(db)]}

    @router.get("/ladders")
    def ladders_page(request: Request) -> Response:
        return page(request, "ladders.html", ladders=api_ladders()["ladders"], nav="ladders")

    @router.get("/api/ladders/{ladder_id}")
    def api_ladder(ladder_id: str) -> dict[str, Any]:
        return api_view(ladder_id)

    @router.get("/ladders/{ladder_id}")
    def ladder_page(request: Request, ladder_id: str) -> Response:
        return page(request, "ladder.html", ladder=api_view(ladder_id), nav="ladders")

    @router.get("/ladders/{ladder_id}/charts/{key}.png")
    def chart_png(ladder_id: str, key: str) -> Response:
        found = next((c for c in shown(ladder_id)["charts"] if c["key"] == key), None)
        if found is None:
            raise HTTPException(404, f"no chart {key!r} for ladder {ladder_id!r}")
        return Response(found["png"], media_type="image/png")

    return router
