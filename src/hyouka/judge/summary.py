"""Aggregates of judge scores: mean, spread and coverage, never a silent NaN.

Rows without a score (parse errors, failed calls, missing inputs) stay out of the mean but
in ``n_total``, and the note says what happened to them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyouka.metrics.bootstrap import bootstrap

__all__ = ["ScoreSummary", "summarize_scores"]

_STORE_FIELDS = ("metric", "value", "stderr", "ci_low", "ci_high", "n_scored", "n_total", "higher_is_better", "note")


@dataclass
class ScoreSummary:
    """Mean score with its spread (std, bootstrap stderr and 95% interval) and coverage."""

    metric: str
    value: float | None
    std: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    n_scored: int
    n_total: int
    statuses: dict[str, int] = field(default_factory=dict)
    higher_is_better: bool = True
    note: str | None = None

    def to_row(self) -> dict[str, Any]:
        """The fields the store's aggregates table keeps."""
        return {k: getattr(self, k) for k in _STORE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return {**self.to_row(), "std": self.std, "statuses": dict(self.statuses)}


def _statuses_text(statuses: Counter[str]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize_scores(
    metric: str,
    scores: Sequence[float | None],
    statuses: Sequence[str] | None = None,
    *,
    n_total: int | None = None,
    higher_is_better: bool = True,
    seed: int = 0,
    n_resamples: int = 1000,
) -> ScoreSummary:
    """Summarise per-row scores (``None`` where a row has none); ``n_total`` defaults to ``len(scores)``."""
    counted = Counter(statuses if statuses is not None else ("ok" if s is not None else "unscored" for s in scores))
    total = len(scores) if n_total is None else n_total
    missing = total - len(scores)
    if missing > 0:
        counted["not_run"] += missing
    values = np.array([float(s) for s in scores if s is not None and not math.isnan(float(s))], dtype=float)
    n = int(values.size)
    unscored = {k: v for k, v in counted.items() if k != "ok"}
    if n == 0:
        why = _statuses_text(Counter(unscored)) or "no rows"
        return ScoreSummary(metric, None, None, None, None, None, 0, total, dict(counted), higher_is_better,
                            note=f"no row scored ({why})")
    std = float(values.std(ddof=1)) if n > 1 else None
    stderr = ci_low = ci_high = None
    if n > 1 and n_resamples:
        boot = bootstrap(lambda a: a.mean(axis=-1), values, n_resamples=n_resamples, seed=seed, vectorized=True)
        if boot.n_valid >= 2:
            stderr, ci_low, ci_high = boot.stderr, boot.ci_low, boot.ci_high
    parts = [f"std {std:.3f}" if std is not None else "one score", f"range {values.min():g}-{values.max():g}"]
    if unscored:
        parts.append("unscored: " + _statuses_text(Counter(unscored)))
    return ScoreSummary(metric, float(values.mean()), std, stderr, ci_low, ci_high, n, total, dict(counted),
                        higher_is_better, note="; ".join(parts))
