"""A suite's average: the one weighted mean of its tasks' headline metrics, with its 95% interval.

``hyouka.run``'s ``EvalResult.suite_scores`` and the leaderboard both call :func:`suite_average`.
The average exists only when every task of the suite (with a positive weight) has a value: a
mean over a different subset of tasks for each model would rank models on different tests.
A lower-is-better metric enters as ``1 - value``, which needs the value in [0, 1]. The
interval combines the tasks' bootstrap standard errors (tasks are independent samples):
``se = sqrt(sum((w_i / W)^2 * se_i^2))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SuiteAverage", "SuiteTerm", "suite_average"]

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class SuiteTerm:
    """One task of a suite as measured: its headline value (``None`` when missing) and how it counts."""

    task: str
    value: float | None
    weight: float = 1.0
    lower_is_better: bool = False
    stderr: float | None = None


@dataclass(frozen=True)
class SuiteAverage:
    """The suite's average (``None`` unless every weighted task has a usable value) and its coverage."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    tasks: tuple[str, ...]  # the tasks with a usable value
    missing: tuple[str, ...]  # weighted tasks without one
    note: str | None = None

    @property
    def complete(self) -> bool:
        return not self.missing


def _usable(term: SuiteTerm) -> float | None:
    """The value as it enters the mean (``1 - v`` for lower-is-better), or ``None``."""
    value = term.value
    if value is None or math.isnan(value):
        return None
    if term.lower_is_better:
        return 1.0 - value if 0.0 <= value <= 1.0 else None
    return value


def suite_average(terms: Sequence[SuiteTerm]) -> SuiteAverage:
    """The weighted mean of ``terms`` when all of them (weight > 0) have a usable value."""
    weighted = [t for t in terms if t.weight > 0]
    usable = [(t, _usable(t)) for t in weighted]
    have = tuple(t.task for t, v in usable if v is not None)
    missing = tuple(t.task for t, v in usable if v is None)
    odd = [t.task for t, v in usable if v is None and t.value is not None and not math.isnan(t.value)]
    note = (f"{', '.join(odd)}: lower is better but the value is outside [0, 1], so it cannot enter the average"
            if odd else None)
    if missing or not weighted:
        return SuiteAverage(None, None, None, have, missing, note)
    total = math.fsum(t.weight for t in weighted)
    mean = math.fsum(t.weight * v for t, v in usable) / total  # type: ignore[operator]
    low = high = None
    if all(t.stderr is not None for t in weighted):
        se = math.sqrt(math.fsum((t.weight / total) ** 2 * t.stderr**2 for t in weighted))  # type: ignore[operator]
        low, high = mean - _Z95 * se, mean + _Z95 * se
    return SuiteAverage(mean, low, high, have, missing, note)
