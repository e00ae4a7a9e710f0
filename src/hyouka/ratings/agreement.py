"""Agreement statistics: between two raters, a rater and a judge, or two judges.

Two shapes of data:

* scores on the same items (1-5 grades): :func:`agreement` reports Pearson, Spearman and Kendall
  correlations, the share of identical scores and of scores within one point, the mean difference,
  Cohen's kappa and Krippendorff's alpha (ordinal), overall and per category;
* labels (pairwise verdicts ``a``/``b``/``tie``; ``bothbad`` is a tie): :func:`label_agreement` over
  pairs of verdicts on the same item reports exact agreement with ties and without (pairs where
  either side said tie are left out, as MT-Bench does), Cohen's kappa and Krippendorff's alpha (nominal),
  overall and per category.

Undefined statistics (no item, a constant side) are ``None`` with the reason in ``note``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hyouka.metrics.correlation import degenerate_reason, kendall, pearson, spearman

__all__ = [
    "Agreement",
    "LabelAgreement",
    "agreement",
    "cohen_kappa",
    "krippendorff_alpha",
    "label_agreement",
]

Key = Hashable
TIES = ("tie", "bothbad")


def cohen_kappa(x: Sequence[Hashable], y: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when chance agreement is certain."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} labels against {len(y)}")
    if not x:
        return None
    labels = sorted({*x, *y}, key=str)
    code = {label: k for k, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    np.add.at(table, ([code[v] for v in x], [code[v] for v in y]), 1.0)
    table /= table.sum()
    observed = float(np.trace(table))
    chance = float(table.sum(axis=1) @ table.sum(axis=0))
    if chance >= 1.0 - 1e-12:
        return None
    return (observed - chance) / (1.0 - chance)


def krippendorff_alpha(reliability: np.ndarray, level: str = "ordinal") -> float | None:
    """Krippendorff's alpha of a raters-by-items matrix (NaN: not rated), by the ``krippendorff`` package.

    None when no item has two ratings or every rating is the same value.
    """
    import krippendorff

    data = np.asarray(reliability, dtype=float)
    pairable = (np.sum(~np.isnan(data), axis=0) >= 2) if data.size else np.array([], dtype=bool)
    values = data[:, pairable] if data.size else data
    if not pairable.any() or np.unique(values[~np.isnan(values)]).size < 2:
        return None
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


@dataclass
class Agreement:
    """How far two sets of scores on the same items agree."""

    n: int
    n_only_a: int
    n_only_b: int
    pearson: float | None
    spearman: float | None
    kendall: float | None
    exact: float | None
    within_one: float | None
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None  # mean of (a - b)
    note: str | None = None
    per_category: dict[str, Agreement] = field(default_factory=dict)
    kappa: float | None = None  # Cohen's, on the scores as labels
    alpha: float | None = None  # Krippendorff's, ordinal

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_category"] = {k: v.to_dict() for k, v in self.per_category.items()}
        return out


def _stats(x: np.ndarray, y: np.ndarray, only_a: int, only_b: int) -> Agreement:
    n = int(x.size)
    if n == 0:
        return Agreement(0, only_a, only_b, None, None, None, None, None, None, None, None, note="no item in common")
    reason = degenerate_reason(x, y)
    diff = x - y
    return Agreement(
        n=n,
        n_only_a=only_a,
        n_only_b=only_b,
        pearson=None if reason else pearson(x, y),
        spearman=None if reason else spearman(x, y),
        kendall=None if reason else kendall(x, y),
        exact=float(np.mean(diff == 0)),
        within_one=float(np.mean(np.abs(diff) <= 1)),
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        mean_diff=float(diff.mean()),
        note=f"correlations undefined: {reason}" if reason else None,
        kappa=cohen_kappa(x.tolist(), y.tolist()),
        alpha=krippendorff_alpha(np.vstack([x, y])),
    )


def agreement(
    a: Mapping[Key, float | None],
    b: Mapping[Key, float | None],
    categories: Mapping[Key, str] | None = None,
) -> Agreement:
    """Agreement of scores ``a`` and ``b`` on the keys both scored; per category when ``categories`` maps keys."""
    scored_a = {k: float(v) for k, v in a.items() if v is not None}
    scored_b = {k: float(v) for k, v in b.items() if v is not None}
    common = [k for k in scored_a if k in scored_b]

    def over(keys: list[Key]) -> Agreement:
        x = np.array([scored_a[k] for k in keys], dtype=float)
        y = np.array([scored_b[k] for k in keys], dtype=float)
        return _stats(x, y, len(scored_a) - len(common), len(scored_b) - len(common))

    out = over(common)
    if categories is not None:
        by_cat: dict[str, list[Key]] = defaultdict(list)
        for k in common:
            by_cat[categories.get(k, "unknown")].append(k)
        out.per_category = {c: over(keys) for c, keys in sorted(by_cat.items())}
        for sub in out.per_category.values():
            sub.n_only_a = sub.n_only_b = 0
    return out


@dataclass
class LabelAgreement:
    """Agreement of pairs of verdicts (``a``, ``b``, ``tie``) on the same items."""

    n: int
    agree: int
    exact: float | None  # with ties: a tie agrees only with a tie
    n_without_ties: int
    agree_without_ties: int
    exact_without_ties: float | None  # over the pairs where neither side said tie
    kappa: float | None
    alpha: float | None = None  # Krippendorff's, nominal, the two sides as two coders
    per_category: dict[str, LabelAgreement] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_category"] = {k: v.to_dict() for k, v in self.per_category.items()}
        return out


def _label(value: str) -> str:
    return "tie" if value in TIES else value


def _labels(pairs: Sequence[tuple[str, str]]) -> LabelAgreement:
    x = [_label(p[0]) for p in pairs]
    y = [_label(p[1]) for p in pairs]
    agree = sum(u == v for u, v in zip(x, y, strict=True))
    decided = [(u, v) for u, v in zip(x, y, strict=True) if u != "tie" and v != "tie"]
    agree_decided = sum(u == v for u, v in decided)
    return LabelAgreement(
        n=len(x), agree=agree, exact=agree / len(x) if x else None,
        n_without_ties=len(decided), agree_without_ties=agree_decided,
        exact_without_ties=agree_decided / len(decided) if decided else None,
        kappa=cohen_kappa(x, y),
        alpha=_nominal_alpha(x, y),
    )


def _nominal_alpha(x: Sequence[str], y: Sequence[str]) -> float | None:
    codes = {label: float(k) for k, label in enumerate(sorted({*x, *y}))}
    if not x:
        return None
    return krippendorff_alpha(np.array([[codes[v] for v in x], [codes[v] for v in y]]), "nominal")


def label_agreement(
    pairs: Sequence[tuple[str, str]], categories: Sequence[str | None] | None = None
) -> LabelAgreement:
    """Agreement over ``pairs`` of verdicts; per category when ``categories`` (one per pair) is given."""
    out = _labels(pairs)
    if categories is not None:
        if len(categories) != len(pairs):
            raise ValueError(f"{len(categories)} categories for {len(pairs)} pairs")
        by_cat: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for pair, category in zip(pairs, categories, strict=True):
            by_cat[category or "unknown"].append(pair)
        out.per_category = {c: _labels(p) for c, p in sorted(by_cat.items())}
    return out
