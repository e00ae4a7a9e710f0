"""The ladder's section of the HTML report, and its page on the dashboard (a real uvicorn server), in headless
Chromium: charts shown, the recommendation given, Japanese rung names readable, no console error.

Uses Debian's ``chromium`` through Playwright's Python client (see tests/test_report_browser.py); skips when
either is missing. The screenshots are kept next to the test's files (``ladder-report.png``,
``ladder-dashboard.png``) to look at.
"""

from __future__ import annotations

from typing import Any

import pytest

import hyouka
from tests.test_ladder import RUNGS, Setup, setup  # noqa: F401  (the fixture)
from tests.test_report_browser import browser  # noqa: F401  (the fixture)


def test_ladder_charts_render_in_chromium_with_japanese_labels(setup: Setup, browser: Any) -> None:  # noqa: F811
    pytest.importorskip("matplotlib")
    pytest.importorskip("fontTools")
    from hyouka.report.build import build_report
    from hyouka.report.fonts import japanese_font_path
    from hyouka.report.html import write_html

    if japanese_font_path() is None:
        pytest.skip("matplotlib-fontja (the report extra) is not installed")
    rungs = [{"name": "ゼロショット"}, {"name": "例題1つ", "fewshot": 1}, {"name": "例題3つ", "fewshot": 3}]
    result = hyouka.ladder(setup.models("small", "large"), "jsquad", rungs=rungs, target=0.55, **setup.bench())
    report = build_report(hyouka.Store(setup.store), [c.run_id for c in result.cells], suite="none",
                          prices=str(setup.prices), ladder=result, title="ラダー評価")
    assert [c.key for c in report.ladder_charts] == ["ladder_cost", "ladder_latency"]
    path = write_html(report, setup.tmp / "ladder.html")

    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.resolve().as_uri())
    page.evaluate("document.fonts.ready")
    for key in ("ladder_cost", "ladder_latency"):
        chart = page.locator(f"#chart-{key} img")
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        loaded, width, height = chart.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert loaded and width > 600 and height > 400, key
    rows = page.locator("table.ladder tbody tr")
    assert rows.count() == 6
    chosen = page.locator("table.ladder tr.chosen")
    assert chosen.count() == 1 and "例題3つ" in chosen.inner_text() and "openai:small" in chosen.inner_text()
    assert "openai:small + 例題3つ is the cheapest cell" in page.locator("p.recommendation").inner_text()
    # the page carries a Japanese face holding the rung names, and the browser uses it
    assert page.evaluate("[...document.fonts].some(f => f.family.includes('hyouka-ja') && f.status === 'loaded')")
    assert page.evaluate("document.fonts.check('16px hyouka-ja', '例題3つ ゼロショット ラダー評価')")
    page.locator("#ladder").scroll_into_view_if_needed()
    page.screenshot(path=str(setup.tmp / "ladder-report.png"), full_page=False)
    assert (setup.tmp / "ladder-report.png").stat().st_size > 50_000
    assert not errors
    page.close()
    _dashboard_page(setup, browser, result.ladder_id)


def _dashboard_page(setup: Setup, browser: Any, ladder_id: str) -> None:  # noqa: F811
    """The same ladder on /ladders/<id>, served by the dashboard under its strict CSP."""
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn")
    from hyouka.web.app import create_app
    from tests.test_web_browser import _free_port

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(setup.store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        listed = page.goto(f"http://127.0.0.1:{port}/ladders")
        assert listed is not None and listed.status == 200
        page.locator(f"a[href='/ladders/{ladder_id}']").click()
        page.wait_for_load_state("networkidle")
        assert "openai:small + 例題3つ is the cheapest cell" in page.locator("#recommendation").inner_text()
        chosen = page.locator("#ladder-cells tr.chosen")
        assert chosen.count() == 1 and "例題3つ" in chosen.inner_text()
        for key in ("ladder_cost", "ladder_latency"):
            chart = page.locator(f"#chart-{key} img")
            chart.scroll_into_view_if_needed()
            loaded, width = chart.evaluate("img => [img.complete, img.naturalWidth]")
            assert loaded and width > 600, key
        assert page.evaluate("document.fonts.check('16px hyouka-ja', '例題3つ ゼロショット')")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(setup.tmp / "ladder-dashboard.png"), full_page=True)
        assert not errors, errors
        page.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
