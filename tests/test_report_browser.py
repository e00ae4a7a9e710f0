"""The HTML report in headless Chromium: every chart visible, model output shown as text, nothing fetched.

Uses Debian's ``chromium`` package through Playwright's Python client (never ``playwright install``);
skips when either is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.test_report import SCRIPT, filled  # noqa: F401  (the fixture)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


def test_report_opens_with_every_chart_visible_and_script_as_text(filled: dict[str, Any], browser: Any) -> None:  # noqa: F811
    pytest.importorskip("matplotlib")
    from hyouka.report.build import build_report
    from hyouka.report.html import write_html

    report = build_report(filled["store"])
    path = write_html(report, filled["tmp"] / "report.html")
    page = browser.new_page()
    fetched: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.resolve().as_uri())

    charts = page.locator("figure.chart img")
    assert charts.count() == len(report.charts) == 5
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        loaded, width, height = chart.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert loaded and width > 200 and height > 100, chart.get_attribute("data-chart")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.scripts.length") == 0
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    shown = page.locator("pre.model-output", has_text=SCRIPT)
    assert shown.count() == 12 and shown.first.is_visible()  # the cheap model's outputs, as text
    assert page.get_by_text("理由 0", exact=False).count() >= 1
    assert not errors
    assert all(url.startswith(("file:", "data:")) for url in fetched), fetched
    page.close()


def test_japanese_renders_without_system_cjk_fonts(filled: dict[str, Any], browser: Any) -> None:  # noqa: F811
    """The page carries its own Japanese font (the report extra's IPAexGothic, cut to the page's characters)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("fontTools")
    from hyouka.report.build import build_report
    from hyouka.report.fonts import japanese_font_path
    from hyouka.report.html import write_html

    if japanese_font_path() is None:
        pytest.skip("matplotlib-fontja (the report extra) is not installed")
    path = write_html(build_report(filled["store"]), filled["tmp"] / "report.html")
    page = browser.new_page()
    page.goto(path.resolve().as_uri())
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.evaluate("document.fonts.ready")
    text = page.locator("pre.model-output").first.inner_text()
    assert any(ord(c) >= 0x3000 for c in text)  # Japanese on the page
    # the embedded face is used for it, and it holds those characters
    assert page.evaluate("[...document.fonts].some(f => f.family.includes('hyouka-ja') && f.status === 'loaded')")
    assert page.evaluate("document.fonts.check('16px hyouka-ja', '評価の理由')")
    page.screenshot(path=str(filled["tmp"] / "report.png"), full_page=False)
    page.close()
