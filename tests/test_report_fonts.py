"""The report extra: without it `hyouka report` says what to install; with it Japanese renders in charts and
in the HTML report on a machine without CJK fonts (the extra's own font)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.test_report import filled  # noqa: F401  (the fixture)


def test_report_without_matplotlib_names_the_extra(filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                                   tmp_path: Path) -> None:
    from hyouka.cli import app

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on an install without the report extra
    result = CliRunner().invoke(app, ["report", "--store", filled["url"], "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2, result.output
    assert "hyouka[report]" in result.output and "Traceback" not in result.output


def _glyph_fonts(svg: str) -> set[str]:
    """The fonts whose glyphs an SVG drawn by matplotlib embeds (as path ids ``<Font>-<code>``)."""
    return set(re.findall(r'id="([A-Za-z-]+)-[0-9a-f]+"', svg))


def test_japanese_chart_labels_are_drawn_with_a_japanese_font() -> None:
    pytest.importorskip("matplotlib")
    from hyouka.report.charts import latency_chart
    from hyouka.report.fonts import japanese_font_path

    if japanese_font_path() is None:
        pytest.skip("matplotlib-fontja (the report extra) is not installed")
    chart = latency_chart(["評価用モデル", "model-b"], [[0.1, 0.2, 0.3], [0.2, 0.3]])
    assert chart is not None
    fonts = _glyph_fonts(chart.to_bytes("svg").decode("utf-8"))
    assert "DejaVuSans" in fonts  # Latin text keeps its font
    japanese = fonts - {"DejaVuSans"}
    # an installed CJK font, else the shipped IPAexGothic; never empty boxes for 評価用モデル
    assert japanese and "LastResortHE-Regular" not in japanese


def test_the_page_embeds_only_the_glyphs_it_uses() -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("fontTools")
    from fontTools.ttLib import TTFont

    from hyouka.report.fonts import font_face_css, japanese_font_path

    if japanese_font_path() is None:
        pytest.skip("matplotlib-fontja (the report extra) is not installed")
    assert font_face_css("plain ASCII only") == ""
    css = font_face_css("<p>評価：日本語の答え</p>")
    data = re.search(r"base64,([A-Za-z0-9+/=]+)", css)
    assert data and "font-family: 'hyouka-ja'" in css
    import base64
    import io

    font = TTFont(io.BytesIO(base64.b64decode(data.group(1))))
    cmap = font.getBestCmap()
    assert all(ord(c) in cmap for c in "評価日本語の答え：")
    assert len(cmap) < 40  # a subset, not the 4 MB font
