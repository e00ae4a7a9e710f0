"""Charts of a leaderboard: metric bars, latency distributions, quality against cost and latency
(with the Pareto frontier marked), and judge scores by category (MT-Bench).

matplotlib is optional (``pip install 'hyouka[report]'``) and imported when a chart is drawn.
Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global backend). Japanese
labels render with an installed CJK font, else with the one the extra ships
(:mod:`hyouka.report.fonts`). Titles and axis labels are in English, the report's language.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hyouka.metrics.pareto import pareto_frontier
from hyouka.report.leaderboard import Leaderboard
from hyouka.report.summary import RowStats
from hyouka.report.tables import row_label

_CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "Hiragino Sans",
              "Yu Gothic", "Meiryo", "MS Gothic")
_MIME = {"png": "image/png", "svg": "image/svg+xml"}


class MissingExtraError(ImportError):
    """An optional dependency is not installed."""


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError("charts need matplotlib: pip install 'hyouka[report]'") from exc
    return matplotlib


@lru_cache
def _font_family() -> tuple[str, ...]:
    """Latin text in DejaVu Sans; Japanese glyphs from an installed CJK font, else from the one the
    report extra ships (matplotlib-fontja's IPAexGothic), so labels never turn into empty boxes."""
    from matplotlib import font_manager

    from hyouka.report.fonts import FONT_FAMILY, japanese_font_path

    installed = {f.name for f in font_manager.fontManager.ttflist}
    shipped = japanese_font_path()
    if FONT_FAMILY not in installed and shipped is not None:
        font_manager.fontManager.addfont(str(shipped))
        installed.add(FONT_FAMILY)
    return ("DejaVu Sans", *dict.fromkeys(f for f in (*_CJK_FONTS, FONT_FAMILY) if f in installed))


@contextlib.contextmanager
def _style() -> Iterator[None]:
    mpl = _matplotlib()
    with mpl.rc_context({"font.family": list(_font_family()), "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "hyouka", "figure.dpi": 100}), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fonts_log = logging.getLogger("matplotlib.font_manager")
        level = fonts_log.level
        fonts_log.setLevel(logging.ERROR)  # "Failed to find font weight bold for IPAexGothic": it has one weight
        try:
            yield
        finally:
            fonts_log.setLevel(level)


@dataclass
class Chart:
    """A drawn figure, rendered on demand as PNG or SVG."""

    key: str
    title: str
    caption: str
    figure: Any

    def to_bytes(self, fmt: str = "png") -> bytes:
        if fmt not in _MIME:
            raise ValueError(f"unknown chart format {fmt!r}; use png or svg")
        buf = io.BytesIO()
        with _style():
            self.figure.savefig(buf, format=fmt, bbox_inches="tight", dpi=110, metadata=_metadata(fmt))
        return buf.getvalue()

    def data_uri(self, fmt: str = "png") -> str:
        return f"data:{_MIME[fmt]};base64," + base64.b64encode(self.to_bytes(fmt)).decode("ascii")


def _metadata(fmt: str) -> dict[str, Any]:
    return {"Date": None} if fmt == "svg" else {}


def _figure(width: float, height: float) -> Any:
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _colors(n: int) -> list[Any]:
    _matplotlib()
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def short_label(label: str, width: int = 40) -> str:
    """A chart label: file paths in model specs cut to their file name, long names cut in the middle."""
    prefix, sep, rest = label.partition(":")
    if sep and "/" in rest and (rest.startswith(("/", ".", "~")) or rest.count("/") > 1):
        label = f"{prefix}:{rest.rstrip('/').rsplit('/', 1)[-1]}"
    if len(label) <= width:
        return label
    keep = width - 1
    return label[: keep - keep // 2] + "…" + label[len(label) - keep // 2 :]


def _labels(labels: Sequence[str]) -> list[str]:
    short = [short_label(label) for label in labels]
    seen: dict[str, int] = {}
    out = []
    for label in short:  # keep labels distinct after shortening
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


# -- charts -------------------------------------------------------------------------------
def metric_bars(board: Leaderboard) -> Chart | None:
    """One panel per task (and the average): each row's headline metric with its 95% interval."""
    if not board.rows:
        return None
    tasks = [t for t in board.tasks if any(t in r.cells for r in board.rows)]
    panels = [*tasks, "average"] if len(tasks) > 1 and board.has_average else tasks
    labels = _labels([row_label(r, board) for r in board.rows])
    colors = _colors(len(labels))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    label_width = min(4.5, 0.075 * max(len(label) for label in labels) + 0.3)
    with _style():
        fig = _figure(label_width + 3.0 * ncols, max(2.2, 0.42 * len(labels) + 1.2) * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
        for ax, panel in zip(axes, panels, strict=False):
            values, lows, highs, metric = [], [], [], "weighted mean"
            for row in board.rows:
                if panel == "average":
                    v, lo, hi = row.average, row.average_ci_low, row.average_ci_high
                else:
                    cell = row.cells.get(panel)
                    v, lo, hi = (cell.value, cell.ci_low, cell.ci_high) if cell else (None, None, None)
                    metric = cell.metric if cell else metric
                values.append(v if _usable(v) else 0.0)
                lows.append(max(0.0, v - lo) if _usable(v) and _usable(lo) else 0.0)  # type: ignore[operator]
                highs.append(max(0.0, hi - v) if _usable(v) and _usable(hi) else 0.0)  # type: ignore[operator]
            ys = list(range(len(labels)))
            ax.barh(ys, values, xerr=[lows, highs], color=colors, capsize=3, error_kw={"elinewidth": 1})
            ax.set_yticks(ys, labels)
            ax.set_title(f"{panel} ({metric})", fontsize=10)
            ax.grid(axis="x", alpha=0.3)
        axes[0].invert_yaxis()  # shared: once for all panels
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        fig.suptitle("Headline metric by model (95% interval)")
    return Chart("metrics", "Metrics by model", "Bars: each task's headline metric; whiskers: 95% bootstrap "
                 "interval; the average is weighted by the suite.", fig)


def latency_chart(labels: Sequence[str], latencies: Sequence[Sequence[float]]) -> Chart | None:
    """Box plots of per-call latency, one per model; log scale when latencies span two decades."""
    present = [(label, list(values)) for label, values in zip(_labels(labels), latencies, strict=True) if values]
    if not present:
        return None
    with _style():
        fig = _figure(8.0, max(2.4, 0.5 * len(present) + 1.2))
        ax = fig.subplots()
        ax.boxplot([v for _, v in present], orientation="horizontal", tick_labels=[lab for lab, _ in present],
                   showfliers=True, flierprops={"markersize": 3, "alpha": 0.5})
        ax.invert_yaxis()
        flat = [x for _, v in present for x in v if x > 0]
        if flat and max(flat) / min(flat) > 100:
            ax.set_xscale("log")
        ax.set_xlabel("latency per call (s)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("Latency distribution by model")
    return Chart("latency", "Latency by model", "Per-call latency (box: quartiles, line: median, whiskers: 1.5 IQR).",
                 fig)


def tradeoff_chart(
    labels: Sequence[str],
    xs: Sequence[float | None],
    ys: Sequence[float | None],
    *,
    key: str,
    title: str,
    xlabel: str,
    ylabel: str = "average score",
) -> Chart | None:
    """Quality (y, higher is better) against a cost (x, lower is better) with the Pareto frontier."""
    points = [(lab, x, y) for lab, x, y in zip(_labels(labels), xs, ys, strict=True) if _usable(x) and _usable(y)]
    if not points:
        return None
    px = [p[1] for p in points]
    py = [p[2] for p in points]
    front = pareto_frontier(px, py)
    on = set(front)
    with _style():
        fig = _figure(7.5, 5.0)
        ax = fig.subplots()
        others = [i for i in range(len(points)) if i not in on]
        ax.scatter([px[i] for i in others], [py[i] for i in others], color="#9aa5b1", s=40, label="dominated",
                   zorder=2)
        ax.scatter([px[i] for i in front], [py[i] for i in front], color="#d1495b", s=60, label="Pareto frontier",
                   zorder=3)
        ax.step([px[i] for i in front], [py[i] for i in front], where="post", color="#d1495b", alpha=0.6, zorder=1)
        for i, (label, x, y) in enumerate(points):
            ax.annotate(label, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8,
                        fontweight="bold" if i in on else "normal")
        positive = [x for x in px if x > 0]
        if len(positive) == len(px) and max(px) / min(px) > 50:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(title)
    missing = len(labels) - len(points)
    caption = "Red: models no other model beats on both axes (cheaper or faster and at least as good)."
    if missing:
        caption += f" {missing} model(s) without a value on the x axis are not shown."
    return Chart(key, title, caption, fig)


def category_chart(scores: dict[str, dict[str, float]], *, metric: str = "score") -> Chart | None:
    """Grouped bars: mean judge score per category (MT-Bench's writing, roleplay, …) for each model."""
    if not scores:
        return None
    models = list(scores)
    names = _labels(models)
    categories = sorted({c for by_cat in scores.values() for c in by_cat})
    if not categories:
        return None
    colors = _colors(len(models))
    width = 0.8 / len(models)
    with _style():
        fig = _figure(max(7.0, 0.9 * len(categories) * max(1, len(models) / 2)), 4.5)
        ax = fig.subplots()
        for m, model in enumerate(models):
            xs = [c + (m - (len(models) - 1) / 2) * width for c in range(len(categories))]
            ax.bar(xs, [scores[model].get(cat, 0.0) for cat in categories], width, label=names[m], color=colors[m])
        ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        ax.set_ylabel(f"mean {metric}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("Judge score by category")
    return Chart("categories", "Scores by category", "Mean judge score per question category, per model.", fig)


def _quality(board: Leaderboard) -> tuple[list[float | None], str]:
    """Each row's quality: its suite average, or the one task's value when only one task has results."""
    if any(r.average is not None for r in board.rows):
        return [r.average for r in board.rows], "average score"
    tasks = [t for t in board.tasks if any(t in r.cells for r in board.rows)]
    if len(tasks) == 1 and not any(r.cells[tasks[0]].lower_is_better for r in board.rows if tasks[0] in r.cells):
        cells = [r.cells.get(tasks[0]) for r in board.rows]
        metric = next(c.metric for c in cells if c is not None)
        return [c.value if c else None for c in cells], f"{tasks[0]} ({metric})"
    return [None] * len(board.rows), "average score"


def board_charts(
    board: Leaderboard,
    stats: Sequence[RowStats],
    categories: dict[str, dict[str, float]] | None = None,
) -> list[Chart]:
    """Every chart the data supports, in report order."""
    labels = [row_label(r, board) for r in board.rows]
    quality, ylabel = _quality(board)
    charts = [
        metric_bars(board),
        latency_chart(labels, [s.latencies for s in stats]),
        tradeoff_chart(labels, [s.cost_usd for s in stats], quality, key="quality_cost",
                       title="Quality vs cost", xlabel="cost of the run (USD)", ylabel=ylabel),
        tradeoff_chart(labels, [s.latency_p50 for s in stats], quality, key="quality_latency",
                       title="Quality vs latency", xlabel="median latency per call (s)", ylabel=ylabel),
        category_chart(categories or {}),
    ]
    return [c for c in charts if c is not None]
