"""The Pareto frontier of points that should be cheap (or fast) and good."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def dominates(a: tuple[float, float], b: tuple[float, float], *, minimize_x: bool = True,
              maximize_y: bool = True) -> bool:
    """Whether ``a`` is at least as good as ``b`` on both axes and strictly better on one."""
    ax, bx = (a[0], b[0]) if minimize_x else (-a[0], -b[0])
    ay, by = (a[1], b[1]) if maximize_y else (-a[1], -b[1])
    return ax <= bx and ay >= by and (ax < bx or ay > by)


def pareto_frontier(
    xs: Sequence[float | None],
    ys: Sequence[float | None],
    *,
    minimize_x: bool = True,
    maximize_y: bool = True,
) -> list[int]:
    """Indices of the points no other point dominates, ordered by ``x``.

    By default ``x`` is a cost (lower is better) and ``y`` a quality (higher is better).
    Points with a missing or NaN coordinate are neither on the frontier nor dominate others;
    identical points do not dominate each other, so both stay.
    """
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    points = {i: (float(x), float(y)) for i, (x, y) in enumerate(zip(xs, ys, strict=True))  # type: ignore[arg-type]
              if _usable(x) and _usable(y)}
    front = [
        i for i, p in points.items()
        if not any(dominates(q, p, minimize_x=minimize_x, maximize_y=maximize_y) for j, q in points.items() if j != i)
    ]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))
