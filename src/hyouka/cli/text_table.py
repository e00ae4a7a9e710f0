"""Plain-text tables for the command line: aligned columns, nothing cut, fast on thousands of rows.

Every cell is printed whole, in a terminal or a pipe, so a run id copied from ``hyouka runs | cat``
is the id that ``show`` and ``compare`` take. Widths count East Asian wide characters as two
columns, so Japanese model names and task text line up. Control characters in cells (model
output, names from the store) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TextIO

_GAP = "  "


def clean(text: str) -> str:
    """``text`` on one line, control characters escaped (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def cell_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and full-width characters two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for c in text:
        if unicodedata.combining(c):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


class TextTable:
    """Columns with a header line; ``right`` names the columns aligned to the right (numbers)."""

    def __init__(self, columns: Sequence[str], *, title: str | None = None, right: Iterable[str] = ()) -> None:
        self.columns = [clean(c) for c in columns]
        self.title = title
        self.right = set(right)
        self.rows: list[list[str]] = []

    def add_row(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([clean("" if c is None else str(c)) for c in cells])

    def lines(self) -> list[str]:
        table = [self.columns, *self.rows]
        cell_widths = [[cell_width(cell) for cell in row] for row in table]
        widths = [max(row[i] for row in cell_widths) for i in range(len(self.columns))]
        right = [name in self.right for name in self.columns]
        out = [clean(self.title)] if self.title else []
        for row, row_widths in zip(table, cell_widths, strict=True):
            cells = []
            for cell, used, width, to_right in zip(row, row_widths, widths, right, strict=True):
                pad = " " * (width - used)
                cells.append(pad + cell if to_right else cell + pad)
            out.append(_GAP.join(cells).rstrip())
        return out

    def print(self, file: TextIO | None = None) -> None:
        (file or sys.stdout).write("\n".join(self.lines()) + "\n")
