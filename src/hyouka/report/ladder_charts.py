"""Charts of a prompting ladder: quality against cost (log scale) and against latency.

One line per model climbs its rungs in order (each point a cell, whiskers its 95% interval,
labelled with the rung); the cells on the Pareto frontier are ringed and joined; the target is a
horizontal line and the budget a vertical one. Drawn with the report's style and fonts
(:mod:`hyouka.report.charts`), so Japanese model and rung names render.
"""

from __future__ import annotations

from typing import Any

from hyouka.metrics.pareto import pareto_frontier
from hyouka.report.charts import Chart, _colors, _figure, _style, _usable, short_label

__all__ = ["ladder_charts"]

_FRONTIER = "#d1495b"


def _cells(result: Any) -> list[Any]:
    return [c for c in result.cells if c.ran and _usable(c.score)]


def _chart(result: Any, x_of: str, *, key: str, title: str, xlabel: str, budget_line: bool) -> Chart | None:
    cells = [c for c in _cells(result) if _usable(getattr(c, x_of)) and getattr(c, x_of) > 0]
    if not cells:
        return None
    higher = all(c.higher_is_better for c in cells)
    lines: dict[int, list[Any]] = {}
    for c in cells:
        lines.setdefault(c.line, []).append(c)
    colors = _colors(len(lines))
    with _style():
        fig = _figure(8.0, 5.2)
        ax = fig.subplots()
        for color, (_, climb) in zip(colors, sorted(lines.items()), strict=True):
            climb.sort(key=lambda c: c.step)
            xs = [getattr(c, x_of) for c in climb]
            ys = [c.score for c in climb]
            low = [max(0.0, c.score - c.ci_low) if _usable(c.ci_low) else 0.0 for c in climb]
            high = [max(0.0, c.ci_high - c.score) if _usable(c.ci_high) else 0.0 for c in climb]
            ax.errorbar(xs, ys, yerr=[low, high], color=color, marker="o", markersize=6, capsize=3, linewidth=1.6,
                        elinewidth=0.9, label=short_label(climb[0].model), zorder=3)
            for c, x, y in zip(climb, xs, ys, strict=True):
                ax.annotate(short_label(c.rung, 24), (x, y), xytext=(6, -12), textcoords="offset points",
                            fontsize=8, color=color)
        front = pareto_frontier([getattr(c, x_of) for c in cells], [c.score for c in cells], maximize_y=higher)
        fx = [getattr(cells[i], x_of) for i in front]
        fy = [cells[i].score for i in front]
        ax.step(fx, fy, where="post", color=_FRONTIER, linestyle="--", linewidth=1.2, alpha=0.8, zorder=2,
                label="Pareto frontier")
        ax.scatter(fx, fy, s=170, facecolors="none", edgecolors=_FRONTIER, linewidths=1.6, zorder=4)
        goal = result.goal
        if goal.target is not None:
            ax.axhline(goal.target, color="#2f855a", linestyle=":", linewidth=1.5, label=f"target {goal.target:g}")
        if budget_line and goal.budget is not None and goal.budget > 0:
            ax.axvline(goal.budget, color="#b7791f", linestyle="-.", linewidth=1.5,
                       label=f"budget ${goal.budget:g} / 1,000 q")
        chosen = result.recommendation.cell
        if chosen is not None and chosen in cells:
            ax.scatter([getattr(chosen, x_of)], [chosen.score], marker="*", s=320, color="#f6ad55",
                       edgecolors="#1f2933", linewidths=0.8, zorder=5, label="recommended")
        ax.set_xscale("log")
        _plain_log_ticks(ax, money=budget_line)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{result.metric} (95% interval)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best", fontsize=8)
        ax.set_title(f"{title}: {short_label(result.task, 40)}")
    missing = len(_cells(result)) - len(cells)
    caption = ("One line per model, climbing its rungs; whiskers: 95% bootstrap interval; ringed and dashed: the "
               "Pareto frontier (no other cell is both cheaper or faster and better).")
    if missing:
        caption += f" {missing} cell(s) without a value on the x axis are not shown."
    return Chart(key, title, caption, fig)


def _plain_log_ticks(ax: Any, *, money: bool) -> None:
    """Ticks at 1, 2 and 5 of each decade, written as plain numbers ($0.2, 0.05 s) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:g}" if money else f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def ladder_charts(result: Any) -> list[Chart]:
    """Quality against cost per 1,000 questions (with the budget line) and against median latency."""
    charts = [
        _chart(result, "cost_per_1k", key="ladder_cost", title="Ladder: quality vs cost",
               xlabel="cost of the model's calls per 1,000 questions (USD, log scale)", budget_line=True),
        _chart(result, "latency_p50", key="ladder_latency", title="Ladder: quality vs latency",
               xlabel="median latency per call (s, log scale)", budget_line=False),
    ]
    return [c for c in charts if c is not None]
