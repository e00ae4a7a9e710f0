"""The dashboard's FastAPI app: pages rendered on the server, each with a JSON twin under /api."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import PackageLoader, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hyouka.report.fonts import FONT_STACK, MONO_STACK, PAGE_FAMILY, japanese_font_path
from hyouka.store.queries import results_signature, run_choices, runs_page
from hyouka.store.store import RunNotFoundError, Store
from hyouka.store.studies import StudyStore
from hyouka.web.data import compare_data, leaderboard_data, run_data, runs_data, samples_data
from hyouka.web.ladders import ladder_router
from hyouka.web.mt_bench import mt_bench_router
from hyouka.web.rate import rater_router
from hyouka.web.security import SecurityMiddleware
from hyouka.web.studies import study_router

_CORRECT_FIRST = ("acc", "exact_match", "em", "correct", "score")
Text = Annotated[str | None, Query()]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=500)]
Day = Annotated[date | None, Query()]
Score = Annotated[float | None, Query()]
PAIRED_AUTO_MAX = 10_000  # samples per run up to which side by side computes the paired bootstrap unasked


def _templates() -> Jinja2Templates:
    """The package's templates, autoescaped, in Jinja's sandbox as the report's are."""
    env = ImmutableSandboxedEnvironment(loader=PackageLoader("hyouka.web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = lambda v, d=3: "—" if v is None else f"{v:.{d}f}"
    return Jinja2Templates(env=env)


def _decision_metric(store: Store, run_id: str, asked: str | None) -> tuple[str | None, list[str]]:
    """The metric that decides correct/incorrect: the one asked for, else the run's first usual one."""
    names = sorted(store.aggregates(run_id))
    if asked:
        return asked, names
    return next((m for m in _CORRECT_FIRST if m in names), names[0] if names else None), names


@lru_cache(maxsize=1)
def fonts_css() -> str:
    """The report's font stack, and the report's Japanese font (IPAexGothic) served whole as its last entry."""
    face = ""
    if japanese_font_path() is not None:
        face = (f"@font-face {{ font-family: '{PAGE_FAMILY}'; font-style: normal; font-weight: 400; "
                "font-display: swap; src: url('/fonts/ipaexg.ttf') format('truetype'); }\n")
    return face + f"body {{ font-family: {FONT_STACK}; }}\npre, code, .metric {{ font-family: {MONO_STACK}; }}\n"


def create_app(store: Store | str | None = None, *, token: str | None = None, prices: str | None = None) -> FastAPI:
    """The dashboard over ``store`` (a Store or its URL); with ``token``, every request must carry it."""
    db = store if isinstance(store, Store) else Store(store)
    app = FastAPI(title="hyouka dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityMiddleware, token=token)
    app.mount("/static", StaticFiles(packages=[("hyouka.web", "static")]), name="static")
    templates = _templates()
    board_cache: dict[str, Any] = {}

    def boards() -> list[dict[str, Any]]:
        """The leaderboard, rebuilt only when the store's runs or aggregates change."""
        signature = results_signature(db)
        if board_cache.get("signature") != signature:
            board_cache.update(signature=signature, tables=leaderboard_data(db, prices))
        return board_cache["tables"]

    def page(request: Request, name: str, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, context)

    def get_run(run_id: str) -> dict[str, Any]:
        try:
            return db.get_run(run_id)
        except RunNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc

    def sample_filters(run_id: str, status: str | None, correct: str | None, metric: str | None, q: str | None,
                       offset: int, limit: int, low: float | None = None,
                       high: float | None = None) -> tuple[dict[str, Any], list[str]]:
        if correct not in (None, "", "correct", "incorrect"):
            raise HTTPException(422, f"correct must be 'correct' or 'incorrect', got {correct!r}")
        if low is not None and high is not None and low > high:
            raise HTTPException(422, f"the score range is empty: min {low} > max {high}")
        decided, metrics = _decision_metric(db, run_id, metric)
        filters = {"status": status or None, "search": q or None, "offset": offset, "limit": limit,
                   "correct": None if not correct else correct == "correct", "metric": decided,
                   "min_score": low, "max_score": high}
        return filters, metrics

    study_tables: list[StudyStore] = []

    def studies() -> StudyStore:
        """The study tables, opened (and created in a store that has none) on the first page that needs them."""
        if not study_tables:
            study_tables.append(StudyStore(db))
        return study_tables[0]

    app.include_router(rater_router(studies, page))
    app.include_router(study_router(studies, page))
    app.include_router(mt_bench_router(db, page))
    app.include_router(ladder_router(db, page, prices))

    @app.get("/fonts.css", include_in_schema=False)
    def fonts() -> Response:
        return Response(fonts_css(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @app.get("/fonts/ipaexg.ttf", include_in_schema=False)
    def font_file() -> Response:
        from fastapi.responses import FileResponse

        path = japanese_font_path()
        if path is None:
            raise HTTPException(404, "no Japanese font: pip install 'hyouka[report]' (matplotlib-fontja)")
        return FileResponse(path, media_type="font/ttf", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/leaderboard", status_code=303)

    chart_cache: dict[str, Any] = {}

    def charts() -> dict[str, Any]:
        """The report's charts as PNG, drawn again only when the store's runs or aggregates change."""
        signature = results_signature(db)
        if chart_cache.get("signature") != signature:
            from hyouka.report.build import build_report
            from hyouka.report.charts import MissingExtraError

            try:
                drawn = build_report(db, prices=prices, charts=True).charts
                chart_cache.update(signature=signature, error=None, charts=[
                    {"key": c.key, "title": c.title, "caption": c.caption, "png": c.to_bytes("png")} for c in drawn])
            except MissingExtraError as exc:
                chart_cache.update(signature=signature, error=str(exc), charts=[])
        return chart_cache

    @app.get("/api/charts")
    def api_charts() -> dict[str, Any]:
        drawn = charts()
        return {"error": drawn["error"], "charts": [{"key": c["key"], "title": c["title"], "caption": c["caption"],
                                                     "url": f"/charts/{c['key']}.png"} for c in drawn["charts"]]}

    @app.get("/charts", response_class=HTMLResponse)
    def charts_page(request: Request) -> Response:
        return page(request, "charts.html", **api_charts(), nav="charts")

    @app.get("/charts/{key}.png")
    def chart_png(key: str) -> Response:
        found = next((c for c in charts()["charts"] if c["key"] == key), None)
        if found is None:
            raise HTTPException(404, f"no chart {key!r}")
        return Response(found["png"], media_type="image/png")

    @app.get("/api/leaderboard")
    def api_leaderboard() -> dict[str, Any]:
        return {"tables": boards()}

    @app.get("/leaderboard", response_class=HTMLResponse)
    def leaderboard(request: Request) -> Response:
        return page(request, "leaderboard.html", tables=boards(), nav="leaderboard")

    @app.get("/api/runs")
    def api_runs(model: Text = None, task: Text = None, status: Text = None, kind: Text = None,
                 since: Day = None, until: Day = None, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
        return runs_data(db, model=model, task=task, status=status, kind=kind, since=since, until=until,
                         offset=offset, limit=limit)

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request, model: Text = None, task: Text = None, status: Text = None, kind: Text = None,
             since: Text = None, until: Text = None, offset: Offset = 0, limit: Limit = 50) -> Response:
        days = {}
        for name, value in (("since", since), ("until", until)):
            try:
                days[name] = date.fromisoformat(value) if value else None
            except ValueError as exc:
                raise HTTPException(422, f"{name}={value!r} is not a date (YYYY-MM-DD)") from exc
        filters = {"model": model or None, "task": task or None, "status": status or None, "kind": kind or None}
        data = runs_data(db, **filters, **days, offset=offset, limit=limit)
        dates = {k: v.isoformat() if v else None for k, v in days.items()}
        return page(request, "runs.html", data=data, filters={**filters, **dates}, choices=run_choices(db),
                    nav="runs")

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> dict[str, Any]:
        run = get_run(run_id)
        return {"run": run_data(run), "aggregates": db.aggregates(run["id"])}

    @app.get("/api/runs/{run_id}/samples")
    def api_samples(run_id: str, status: Text = None, correct: Text = None, metric: Text = None, q: Text = None,
                    min: Score = None, max: Score = None, offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
        run = get_run(run_id)
        filters, _ = sample_filters(run["id"], status, correct, metric, q, offset, limit, min, max)
        return {**samples_data(db, run["id"], **filters), "metric": filters["metric"]}

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_detail(request: Request, run_id: str, status: Text = None, correct: Text = None, metric: Text = None,
                   q: Text = None, min: Text = None, max: Text = None, offset: Offset = 0,
                   limit: Limit = 20) -> Response:
        run = get_run(run_id)
        bounds = []
        for name, value in (("min", min), ("max", max)):
            try:
                bounds.append(float(value) if value else None)
            except ValueError as exc:
                raise HTTPException(422, f"{name}={value!r} is not a number") from exc
        filters, metrics = sample_filters(run["id"], status, correct, metric, q, offset, limit, *bounds)
        data = samples_data(db, run["id"], **filters)
        query = {"status": status or "", "correct": correct or "", "metric": metric or "", "q": q or "",
                 "min": min or "", "max": max or "", "limit": limit}
        return page(request, "run.html", run=run_data(run), aggregates=db.aggregates(run["id"]), data=data,
                    query=query, metrics=metrics, decided=filters["metric"], nav="runs",
                    statuses=["ok", "format_error", "parse_error", "api_error", "timeout"])

    def compare_context(runs: list[str] | None, task: str | None, only: str, metric: str | None, offset: int,
                        limit: int, paired: bool | None = None) -> dict[str, Any]:
        chosen = [get_run(i) for i in dict.fromkeys(runs or [])]
        if not chosen and task:
            chosen = runs_page(db, task=task, status="completed", limit=6).items
        decided = metric or (_decision_metric(db, chosen[0]["id"], None)[0] if chosen else None)
        try:
            if paired is None:  # the paired bootstrap reads every sample: asked for on large runs
                paired = all(r["n_samples"] <= PAIRED_AUTO_MAX for r in chosen)
            data = compare_data(db, chosen, only=only, metric=decided, offset=offset, limit=limit, paired=paired)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"data": data, "metric": decided, "only": only, "paired_offered": len(chosen) == 2 and not paired}

    @app.get("/api/compare")
    def api_compare(runs: Annotated[list[str] | None, Query()] = None, task: Text = None, only: str = "all",
                    metric: Text = None, offset: Offset = 0, limit: Limit = 20,
                    paired: bool | None = None) -> dict[str, Any]:
        context = compare_context(runs, task, only, metric, offset, limit, paired)
        return {**context["data"], "metric": context["metric"], "only": only}

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request, runs: Annotated[list[str] | None, Query()] = None, task: Text = None,
                only: str = "all", metric: Text = None, offset: Offset = 0, limit: Limit = 20,
                paired: bool | None = None) -> Response:
        context = compare_context(runs, task, only, metric, offset, limit, paired)
        shown = context["data"]["runs"]
        same_task = shown[0]["task"] if shown else task
        candidates = runs_page(db, task=same_task, status="completed", limit=50).items if same_task else []
        metrics = sorted(db.aggregates(shown[0]["id"])) if shown else []
        query = [("runs", r["id"]) for r in shown] + [("only", only), ("metric", context["metric"] or ""),
                                                      ("limit", limit)]
        return page(request, "compare.html", **context, task=same_task, candidates=[run_data(r) for r in candidates],
                    chosen={r["id"] for r in shown}, metrics=metrics, query=query, nav="compare",
                    tasks=run_choices(db)["task"])

    return app
