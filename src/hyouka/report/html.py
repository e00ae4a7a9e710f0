"""Render a :class:`~hyouka.report.build.Report` as one self-contained HTML file.

Charts are embedded as ``data:`` images, styles are inline, and there is no script: a
Content-Security-Policy forbids any, so even text that escaped escaping could not run.
Every piece of model or user text goes through Jinja's autoescaping.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from hyouka.report.build import Report
from hyouka.report.examples import example_row
from hyouka.report.fonts import FONT_STACK, MONO_STACK, font_face_css
from hyouka.report.safe import scrub
from hyouka.report.tables import fmt, fmt_cost, render_boards

TEMPLATES = Path(__file__).with_name("templates")
MAX_EXAMPLES = 200
_INPUT_TAIL = 1200
_FONT_FACE_SLOT = "/*hyouka:font-face*/"


def _num(value: float | None, digits: int = 3) -> str:
    return fmt(value, digits)


@lru_cache
def _env() -> ImmutableSandboxedEnvironment:
    # the package's own templates, rendered like every template in hyouka in the sandbox (defence in depth)
    env = ImmutableSandboxedEnvironment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["usd"] = fmt_cost
    return env


def _tail(text: str) -> str:
    if len(text) <= _INPUT_TAIL:
        return text
    return f"…({len(text) - _INPUT_TAIL} characters before)\n" + text[-_INPUT_TAIL:]


def _examples(report: Report, max_examples: int) -> list[dict[str, Any]]:
    groups = []
    for view in report.views:
        rows = []
        for sample in view.samples[:max_examples]:
            row = example_row(view, sample)
            row["input_tail"] = _tail(row["input"])
            row["metrics"] = [(k.removeprefix("metric/"), v) for k, v in row.items() if k.startswith("metric/")]
            rows.append(row)
        groups.append({"view": view, "rows": rows, "has_justification": any(r["justification"] for r in rows)})
    return groups


def _metadata(report: Report) -> dict[str, str]:
    out = {}
    for view in report.views:
        run = view.run
        meta = {
            "config": run.get("config"),
            "model_identity": run.get("model_identity"),
            "versions": run.get("versions"),
            "suite": run.get("suite"),
            "error": run.get("error"),
            "accounting": view.accounting,
        }
        out[view.id] = json.dumps(scrub(meta), ensure_ascii=False, indent=2, default=str, allow_nan=True)
    return out


def render_html(report: Report, *, max_examples: int = MAX_EXAMPLES) -> str:
    """The report page as a string."""
    from hyouka import __version__

    charts = [{"key": c.key, "title": c.title, "caption": c.caption, "uri": c.data_uri("png")} for c in report.charts]
    ladder_charts = [{"key": c.key, "title": c.title, "caption": c.caption, "uri": c.data_uri("png")}
                     for c in report.ladder_charts]
    template = _env().get_template("report.html.j2")
    page = template.render(
        title=report.title,
        version=__version__,
        generated_at=report.generated_at,
        suite=report.board.suite,
        price_source=report.price_source,
        notes=report.notes,
        views=report.views,
        leaderboard_html=render_boards(report.boards or [report.board], "html", report.all_stats or [report.stats]),
        charts=charts,
        ladder=report.ladder,
        ladder_charts=ladder_charts,
        examples=_examples(report, max_examples),
        metadata=_metadata(report),
        isnan=math.isnan,
        font_stack=Markup(FONT_STACK),  # constants, not data: their quotes stay quotes in the style sheet
        mono_stack=Markup(MONO_STACK),
    )
    # the Japanese font, cut to the characters on the page, for browsers on machines without one
    return page.replace(_FONT_FACE_SLOT, font_face_css(page), 1)


def write_html(report: Report, path: str | Path, *, max_examples: int = MAX_EXAMPLES) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report, max_examples=max_examples), encoding="utf-8")
    return out
