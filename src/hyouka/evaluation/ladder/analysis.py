"""What a ladder's cells say: return on each rung, the Pareto frontier, and the cell to choose.

Three situations decide the goal (:class:`Goal`):

- *good enough* (``target``): the cheapest cell whose 95% interval reaches the target, i.e. whose
  lower bound is at or above it (its upper bound at or below it for a lower-is-better metric):
  a mean above the target with an interval that dips below it does not count;
- *fixed budget* (``budget``, USD per 1,000 questions): the best score among the cells whose
  cost per 1,000 questions stays within it;
- *step change* (neither): the best score, whatever it costs.

With both a target and a budget, the cheapest cell that reaches the target within the budget.
Comparisons between two cells are paired by question (the same questions in both runs): the
difference of their per-sample scores with a paired bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyouka.metrics.bootstrap import bootstrap
from hyouka.metrics.pareto import pareto_frontier

__all__ = ["CellResult", "Goal", "PairedDiff", "Recommendation", "analyse", "paired_difference", "recommend"]


@dataclass(frozen=True)
class Goal:
    """The quality to reach (``target``) and/or the cost per 1,000 questions not to pass (``budget``, USD)."""

    target: float | None = None
    budget: float | None = None

    def __post_init__(self) -> None:
        for name in ("target", "budget"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"the {name} must be a number, got {value!r}")
        if self.budget is not None and self.budget < 0:
            raise ValueError(f"the budget is a cost per 1,000 questions (USD, 0 or more), got {self.budget}")

    @property
    def situation(self) -> str:
        if self.target is not None:
            return "good enough within budget" if self.budget is not None else "good enough"
        return "fixed budget" if self.budget is not None else "step change"

    def reaches_target(self, cell: CellResult) -> bool:
        """The cell's interval (not its mean) is at or beyond the target."""
        if self.target is None:
            return True
        if cell.score is None:
            return False
        if cell.higher_is_better:
            return cell.ci_low is not None and cell.ci_low >= self.target
        return cell.ci_high is not None and cell.ci_high <= self.target

    def within_budget(self, cell: CellResult) -> bool:
        if self.budget is None:
            return True
        return cell.cost_per_1k is not None and cell.cost_per_1k <= self.budget

    def met_by(self, cell: CellResult) -> bool:
        return cell.ran and cell.score is not None and self.reaches_target(cell) and self.within_budget(cell)

    def describe(self) -> str:
        parts = []
        if self.target is not None:
            parts.append(f"an interval reaching {_num(self.target)}")
        if self.budget is not None:
            parts.append(f"a cost within {_usd(self.budget)} per 1,000 questions")
        return " and ".join(parts) or "the best score, whatever it costs"


@dataclass
class PairedDiff:
    """``b − a`` over the questions both cells scored, with a paired bootstrap 95% interval."""

    diff: float
    ci_low: float | None
    ci_high: float | None
    n_pairs: int

    @property
    def significant(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None and (self.ci_low > 0 or self.ci_high < 0)

    def describe(self) -> str:
        ci = f" [{_signed(self.ci_low)}, {_signed(self.ci_high)}]" if self.ci_low is not None else ""
        verdict = "significant" if self.significant else "not significant"
        return f"paired difference {_signed(self.diff)}{ci} over {self.n_pairs} questions, {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"diff": self.diff, "ci_low": self.ci_low, "ci_high": self.ci_high, "n_pairs": self.n_pairs,
                "significant": self.significant}


def paired_difference(a: dict[str, float], b: dict[str, float], *, seed: int = 0) -> PairedDiff | None:
    """Mean of ``b[q] − a[q]`` over the questions in both, with a paired bootstrap interval; ``None`` if none."""
    keys = sorted(a.keys() & b.keys())
    if not keys:
        return None
    diffs = np.array([b[k] - a[k] for k in keys], dtype=float)
    if len(keys) < 2:
        return PairedDiff(float(diffs.mean()), None, None, len(keys))
    boot = bootstrap(lambda d: np.mean(d, axis=-1), diffs, vectorized=True, seed=seed)
    ok = math.isfinite(boot.ci_low) and math.isfinite(boot.ci_high)
    return PairedDiff(float(diffs.mean()), boot.ci_low if ok else None, boot.ci_high if ok else None, len(keys))


@dataclass
class CellResult:
    """One (model, rung) cell: its run and numbers, its step up from the rung below, and its place."""

    model: str
    rung: str
    line: int  # which model's climb
    step: int  # the rung's place in that climb, from 0
    status: str = "done"  # done, or why it did not run ("not run: …")
    run_id: str | None = None
    metric: str = ""
    score: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_scored: int = 0
    n_total: int = 0
    higher_is_better: bool = True
    cost_per_1k: float | None = None
    judge_cost_per_1k: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    model_calls: int = 0  # calls this ladder made for the cell (0: all from the store or the cache)
    cache_hits: int = 0
    reused: bool = False
    per_sample: dict[str, float] = field(default_factory=dict, repr=False)
    below: str | None = None  # the label of the rung below, in the same climb
    delta_score: float | None = None
    delta_cost: float | None = None
    delta_paired: PairedDiff | None = None
    on_frontier: bool = False
    meets_goal: bool = False
    estimate: dict[str, Any] | None = None  # a dry run's prices

    @property
    def label(self) -> str:
        return f"{self.model} + {self.rung}"

    @property
    def ran(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("per_sample", "delta_paired")}
        out["label"] = self.label
        out["delta_paired"] = self.delta_paired.to_dict() if self.delta_paired else None
        return out


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def _gain(cell: CellResult, other: CellResult) -> float:
    """How much better ``other`` scores than ``cell`` (positive: better), whatever the metric's direction."""
    assert cell.score is not None and other.score is not None
    return (other.score - cell.score) * (1 if cell.higher_is_better else -1)


def analyse(cells: Sequence[CellResult], goal: Goal, *, seed: int = 0) -> None:
    """Fill each cell's step up from the rung below (Δscore, Δcost, paired), the frontier, and who meets the goal."""
    for cell in cells:
        cell.meets_goal = goal.met_by(cell)
    by_line: dict[int, list[CellResult]] = {}
    for cell in cells:
        by_line.setdefault(cell.line, []).append(cell)
    for line in by_line.values():
        previous = None
        for cell in sorted(line, key=lambda c: c.step):
            if not cell.ran:
                continue
            if previous is not None:
                cell.below = previous.rung
                if cell.score is not None and previous.score is not None:
                    cell.delta_score = cell.score - previous.score
                if cell.cost_per_1k is not None and previous.cost_per_1k is not None:
                    cell.delta_cost = cell.cost_per_1k - previous.cost_per_1k
                cell.delta_paired = paired_difference(previous.per_sample, cell.per_sample, seed=seed)
            previous = cell
    scored = [c for c in cells if c.ran]
    higher = all(c.higher_is_better for c in scored)
    front = pareto_frontier([c.cost_per_1k for c in scored], [c.score for c in scored], maximize_y=higher)
    for i in front:
        scored[i].on_frontier = True


@dataclass
class Recommendation:
    """The cell to choose for the goal, and why, in one or two sentences."""

    situation: str
    goal: Goal
    cell: CellResult | None
    reason: str
    alternative: CellResult | None = None
    comparison: PairedDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"situation": self.situation, "target": self.goal.target, "budget": self.goal.budget,
                "cell": self.cell.label if self.cell else None, "model": self.cell.model if self.cell else None,
                "rung": self.cell.rung if self.cell else None, "reason": self.reason,
                "alternative": self.alternative.label if self.alternative else None,
                "comparison": self.comparison.to_dict() if self.comparison else None}


def recommend(cells: Sequence[CellResult], goal: Goal, *, seed: int = 0) -> Recommendation:
    """The cell for ``goal`` (see the module docstring); ``cell`` is ``None`` when no cell meets it, said plainly."""
    scored = [c for c in cells if c.ran and c.score is not None]
    situation = goal.situation
    if not scored:
        return Recommendation(situation, goal, None, "No cell has a score: nothing to recommend.")
    if goal.target is not None:
        return _good_enough(scored, goal, seed)
    if goal.budget is not None:
        return _within_budget(scored, goal, seed)
    return _step_change(scored, goal, seed)


def _cost_key(cell: CellResult) -> tuple[float, float]:
    assert cell.score is not None
    cost = cell.cost_per_1k if cell.cost_per_1k is not None else math.inf
    return cost, -cell.score if cell.higher_is_better else cell.score


def _best(cells: Sequence[CellResult]) -> CellResult:
    """The best score; among equal scores the cheapest."""
    top = max(cells, key=lambda c: (c.score if c.higher_is_better else -c.score))  # type: ignore[operator]
    equal = [c for c in cells if c.score == top.score]
    return min(equal, key=_cost_key)


def _good_enough(scored: list[CellResult], goal: Goal, seed: int) -> Recommendation:
    meeting = [c for c in scored if goal.met_by(c)]
    if not meeting:
        reaching = [c for c in scored if goal.reaches_target(c)]
        if reaching and goal.budget is not None:
            cheapest = min(reaching, key=_cost_key)
            reason = (f"No cell meets the goal: the cells whose interval reaches {_num(goal.target)} all cost more "
                      f"than {_usd(goal.budget)} per 1,000 questions (the cheapest, {cheapest.label}, costs "
                      f"{_usd(cheapest.cost_per_1k)}).")
            return Recommendation(goal.situation, goal, None, reason, alternative=cheapest)
        closest = max(scored, key=lambda c: _bound(c))
        reason = (f"No cell meets the goal: no cell's 95% interval reaches {_num(goal.target)}; the closest is "
                  f"{closest.label} ({_score(closest)}).")
        return Recommendation(goal.situation, goal, None, reason, alternative=closest)
    chosen = min(meeting, key=_cost_key)
    budget = f" within {_usd(goal.budget)} per 1,000 questions" if goal.budget is not None else ""
    reason = (f"{chosen.label} is the cheapest cell whose 95% interval reaches {_num(goal.target)}{budget} "
              f"({_score(chosen)}, {_usd(chosen.cost_per_1k)} per 1,000 questions)")
    better = [c for c in scored if c is not chosen and _gain(chosen, c) > 0]
    if not better:
        return Recommendation(goal.situation, goal, chosen, reason + "; no cell scores higher.")
    alt = _best(better)
    diff = paired_difference(chosen.per_sample, alt.per_sample, seed=seed)
    reason += f"; {alt.label} is {_num(_gain(chosen, alt))} better at {_ratio(chosen, alt)}"
    return Recommendation(goal.situation, goal, chosen, reason + _paired_note(diff) + ".", alt, diff)


def _within_budget(scored: list[CellResult], goal: Goal, seed: int) -> Recommendation:
    within = [c for c in scored if goal.within_budget(c)]
    if not within:
        cheapest = min(scored, key=_cost_key)
        reason = (f"No cell meets the goal: every cell costs more than {_usd(goal.budget)} per 1,000 questions "
                  f"(the cheapest, {cheapest.label}, costs {_usd(cheapest.cost_per_1k)}).")
        return Recommendation(goal.situation, goal, None, reason, alternative=cheapest)
    chosen = _best(within)
    reason = (f"{chosen.label} has the best score within {_usd(goal.budget)} per 1,000 questions "
              f"({_score(chosen)}, {_usd(chosen.cost_per_1k)} per 1,000 questions)")
    better = [c for c in scored if _gain(chosen, c) > 0]
    if better:
        alt = min(better, key=_cost_key)  # the cheapest step up, over the budget
        diff = paired_difference(chosen.per_sample, alt.per_sample, seed=seed)
        reason += (f"; {alt.label} is {_num(_gain(chosen, alt))} better at {_usd(alt.cost_per_1k)} per 1,000 "
                   f"questions, over the budget{_paired_note(diff)}.")
        return Recommendation(goal.situation, goal, chosen, reason, alt, diff)
    return Recommendation(goal.situation, goal, chosen, reason + "; no cell scores higher at any cost.")


def _step_change(scored: list[CellResult], goal: Goal, seed: int) -> Recommendation:
    chosen = _best(scored)
    reason = (f"{chosen.label} has the best score, whatever it costs ({_score(chosen)}, "
              f"{_usd(chosen.cost_per_1k)} per 1,000 questions)")
    cheaper = sorted((c for c in scored if c is not chosen and _cost_key(c) < _cost_key(chosen)), key=_cost_key)
    for alt in cheaper:  # the cheapest cell that is not significantly worse, paired by question
        diff = paired_difference(chosen.per_sample, alt.per_sample, seed=seed)
        if diff is not None and not diff.significant:
            reason += (f"; {alt.label} is not significantly worse at {_ratio(chosen, alt)}"
                       f"{_paired_note(diff)}.")
            return Recommendation(goal.situation, goal, chosen, reason, alt, diff)
    return Recommendation(goal.situation, goal, chosen, reason + "; every cheaper cell is significantly worse, "
                          "paired by question." if cheaper else reason + "; it is also the cheapest.")


def _bound(cell: CellResult) -> float:
    """How close a cell's interval comes to a target: its lower bound (upper, negated, if lower is better)."""
    if cell.higher_is_better:
        return cell.ci_low if cell.ci_low is not None else -math.inf
    return -cell.ci_high if cell.ci_high is not None else -math.inf


def _paired_note(diff: PairedDiff | None) -> str:
    return f" ({diff.describe()})" if diff is not None else ""


def _ratio(base: CellResult, other: CellResult) -> str:
    """``6× the cost``, ``a third of the cost``…: ``other``'s cost against ``base``'s."""
    a, b = base.cost_per_1k, other.cost_per_1k
    if a is None or b is None:
        return "an unknown cost"
    if a == 0:
        return "no cost either" if b == 0 else f"{_usd(b)} per 1,000 questions (it costs nothing)"
    ratio = b / a
    if ratio >= 1:
        return f"{_times(ratio)} the cost"
    return f"1/{_times(1 / ratio).rstrip('×')} of the cost"


def _times(ratio: float) -> str:
    return f"{ratio:.0f}×" if ratio >= 9.5 else f"{ratio:.1f}×".replace(".0×", "×")


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def _usd(value: float | None) -> str:
    if value is None:
        return "an unknown cost"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _score(cell: CellResult) -> str:
    ci = f" [{_num(cell.ci_low)}, {_num(cell.ci_high)}]" if cell.ci_low is not None else ""
    return f"{cell.metric} {_num(cell.score)}{ci}"
