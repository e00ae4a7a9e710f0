"""The leaderboard as a terminal table, Markdown, CSV, JSON or an HTML table.

Every renderer takes the same :class:`Leaderboard` and (optionally) the rows' cost and latency
(:class:`~hyouka.report.summary.RowStats`). Model names are user text: Markdown escapes its
syntax, CSV neutralises spreadsheet formulas, HTML is escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyouka.report.leaderboard import Cell, Leaderboard, Row

if TYPE_CHECKING:
    from hyouka.report.summary import RowStats

FORMATS = ("table", "markdown", "csv", "json", "html")


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def fmt_cost(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:.4f}" if value < 100 else f"${value:,.0f}"


def fmt_ci(low: float | None, high: float | None, digits: int = 3) -> str:
    return "" if low is None or high is None else f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def cell_text(cell: Cell | None, *, ci: bool = True) -> str:
    if cell is None:
        return "—"
    text = fmt(cell.value)
    return f"{text} {fmt_ci(cell.ci_low, cell.ci_high)}".strip() if ci else text


def headers(board: Leaderboard, with_stats: bool) -> list[str]:
    cols = ["#", "model", "setting"]
    for task in board.tasks:
        metric = _metric_of(board, task)
        cols.append(f"{task} ({metric})" if metric else task)
    if board.has_average:
        cols.append("average")
    if with_stats:
        cols += ["cost", "judge cost", "latency p50 (s)", "latency p95 (s)", "tokens"]
    return cols


def _metric_of(board: Leaderboard, task: str) -> str:
    for row in board.rows:
        cell = row.cells.get(task)
        if cell is not None:
            return cell.metric + (" ↓" if cell.lower_is_better else "")
    return board.metrics.get(task, "")


def average_text(row: Row, board: Leaderboard, *, ci: bool = True) -> str:
    """The row's average with its interval, or which suite tasks a partial row lacks."""
    if row.partial:
        return f"partial: no {', '.join(row.missing)}"
    average = f"{fmt(row.average)} {fmt_ci(row.average_ci_low, row.average_ci_high) if ci else ''}".strip()
    return f"{average} ({row.n_tasks_averaged}/{len(board.tasks)})"


def text_rows(board: Leaderboard, stats: Sequence[RowStats] | None = None, *, ci: bool = True) -> list[list[str]]:
    """Each row as display strings, in :func:`headers` order; partial rows are unranked ("—")."""
    out = []
    rank = 0
    for index, row in enumerate(board.rows):
        rank += not row.partial
        cells = ["—" if row.partial else str(rank), row.model, row.setting]
        cells += [cell_text(row.cells.get(t), ci=ci) for t in board.tasks]
        if board.has_average:
            cells.append(average_text(row, board, ci=ci))
        if stats is not None:
            s = stats[index]
            cells += [fmt_cost(s.cost_usd), fmt_cost(s.judge_cost_usd), fmt(s.latency_p50), fmt(s.latency_p95),
                      f"{s.total_tokens:,}" if s.n_calls else "—"]
        out.append(cells)
    return out


def records(board: Leaderboard, stats: Sequence[RowStats] | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows: the leaderboard's records plus cost, tokens and latency."""
    out = board.to_records()
    for record, s in zip(out, stats or [], strict=False):
        record.update(
            cost_usd=s.cost_usd, judge_cost_usd=s.judge_cost_usd, prompt_tokens=s.prompt_tokens,
            completion_tokens=s.completion_tokens, n_calls=s.n_calls, latency_p50_s=s.latency_p50,
            latency_p95_s=s.latency_p95,
        )
    return out


_MD_SPECIAL = str.maketrans({**{c: "\\" + c for c in "\\`*_[]|#"}, "<": "&lt;", ">": "&gt;", "&": "&amp;"})


def md_escape(text: str) -> str:
    """User text made inert in a Markdown table cell (no links, emphasis, HTML or column breaks)."""
    return text.replace("\r", " ").replace("\n", " ").translate(_MD_SPECIAL)


def to_markdown(board: Leaderboard, stats: Sequence[RowStats] | None = None) -> str:
    head = headers(board, stats is not None)
    lines = ["| " + " | ".join(md_escape(h) for h in head) + " |", "|" + "---|" * len(head)]
    for cells in text_rows(board, stats):
        user, numbers = cells[1:3], cells[3:]
        lines.append("| " + " | ".join([cells[0], *map(md_escape, user), *(c.replace("|", "\\|") for c in numbers)])
                     + " |")
    return "\n".join(lines) + "\n"


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(board: Leaderboard, stats: Sequence[RowStats] | None = None) -> str:
    """One line per row; numbers unformatted, each task with its value and interval."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["rank", "model", "setting"]
    for task in board.tasks:
        head += [f"{task}", f"{task}_ci_low", f"{task}_ci_high", f"{task}_metric"]
    if board.has_average:
        head += ["average", "average_ci_low", "average_ci_high", "n_tasks_averaged", "partial", "missing"]
    if stats is not None:
        head += ["cost_usd", "judge_cost_usd", "latency_p50_s", "latency_p95_s", "prompt_tokens", "completion_tokens"]
    writer.writerow(head)
    for rank, row in enumerate(board.rows, 1):
        line: list[Any] = ["" if row.partial else rank, _csv_safe(row.model), _csv_safe(row.setting)]
        for task in board.tasks:
            c = row.cells.get(task)
            line += [None, None, None, None] if c is None else [c.value, c.ci_low, c.ci_high, c.metric]
        if board.has_average:
            line += [row.average, row.average_ci_low, row.average_ci_high, row.n_tasks_averaged, row.partial,
                     " ".join(row.missing)]
        if stats is not None:
            s = stats[rank - 1]
            line += [s.cost_usd, s.judge_cost_usd, s.latency_p50, s.latency_p95, s.prompt_tokens, s.completion_tokens]
        writer.writerow(["" if v is None else v for v in line])
    return buf.getvalue()


def to_json(board: Leaderboard, stats: Sequence[RowStats] | None = None) -> str:
    payload = {"title": board.title, "suite": board.suite, "tasks": board.tasks, "weights": board.weights,
               "notes": board.notes, "rows": records(board, stats)}
    return json.dumps(payload, ensure_ascii=False, indent=2, default=str)


def to_html(board: Leaderboard, stats: Sequence[RowStats] | None = None) -> str:
    """An escaped ``<table class="leaderboard">`` (no page around it)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers(board, stats is not None))
    body = []
    for cells in text_rows(board, stats):
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def to_rich(board: Leaderboard, stats: Sequence[RowStats] | None = None) -> Any:
    """A rich ``Table`` for the terminal (markup in model names is escaped)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=board.title or f"leaderboard ({board.suite or 'all tasks'})")
    for i, h in enumerate(headers(board, stats is not None)):
        table.add_column(escape(h), justify="right" if i == 0 or i > 2 else "left")
    for cells in text_rows(board, stats):
        table.add_row(*(escape(c) for c in cells))
    return table


def render(board: Leaderboard, fmt_name: str, stats: Sequence[RowStats] | None = None) -> str:
    """The board in one of :data:`FORMATS` other than ``table``."""
    renderers = {"markdown": to_markdown, "md": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}
    if fmt_name not in renderers:
        raise ValueError(f"unknown leaderboard format {fmt_name!r}; choose one of {', '.join(FORMATS)}")
    return renderers[fmt_name](board, stats)


def render_boards(
    boards: Sequence[Leaderboard], fmt_name: str, stats: Sequence[Sequence[RowStats]] | None = None
) -> str:
    """Several tables in one of :data:`FORMATS`: headed Markdown sections, CSV or HTML tables one after
    another (a blank line apart), or one JSON object ``{"tables": [...]}``."""
    each = [None] * len(boards) if stats is None else list(stats)
    if fmt_name == "json":
        tables = [json.loads(to_json(b, s)) for b, s in zip(boards, each, strict=True)]
        return json.dumps({"tables": tables}, ensure_ascii=False, indent=2, default=str)
    parts = []
    for board, board_stats in zip(boards, each, strict=True):
        text = render(board, fmt_name, board_stats)
        if fmt_name in ("markdown", "md"):
            text = f"### {md_escape(board.title)}\n\n{text}"
            text += "".join(f"\n{md_escape(n)}\n" for n in board.notes)
        elif fmt_name == "html":
            text = f"<h3>{html.escape(board.title)}</h3>{text}" + "".join(
                f"<p class=\"note\">{html.escape(n)}</p>" for n in board.notes)
        parts.append(text)
    return "\n".join(parts)


def row_label(row: Row, board: Leaderboard) -> str:
    """The row's model, with its setting when the model has several rows."""
    same = sum(r.model == row.model for r in board.rows)
    return row.model if same == 1 else row.label
