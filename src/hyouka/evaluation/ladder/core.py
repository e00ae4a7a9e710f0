"""``hyouka.ladder``: climb from the cheapest prompting technique to the dearest, per model, and choose.

Every (model, rung) cell is an ordinary stored run (see :mod:`hyouka.evaluation.ladder.cells`),
so a ladder killed half-way, or run again with one more rung, pays only for the cells (and
samples) it has not finished. ``stop_at_goal`` climbs each model's rungs in order and stops at the
first one that meets the goal; the rungs that name a model of their own (a fine-tuned one, the
outer loop) are climbed only when no cell of the models before met it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hyouka.engine.cache import ResponseCache
from hyouka.evaluation.ladder.analysis import CellResult, Goal, Recommendation, analyse, recommend
from hyouka.evaluation.ladder.cells import (
    CellSettings,
    LadderError,
    check_rung,
    default_metric,
    estimate_cell,
    measure_cell,
    model_label,
    parse_task,
    run_cell,
)
from hyouka.evaluation.ladder.rungs import Line, Rung, ladder_lines, load_rungs
from hyouka.pricing.table import PriceTable, load_prices
from hyouka.store.store import Store

__all__ = ["LadderResult", "ladder"]

ModelsArg = Any  # a spec, a backend, (spec, options) pairs, or {spec: options}
Progress = Callable[[str], Callable[[int, int], None]]
TABLE_COLUMNS = ("model", "rung", "status", "score", "ci_low", "ci_high", "n_scored", "n_total", "cost_per_1k",
                 "judge_cost_per_1k", "latency_p50", "latency_p95", "delta_score", "delta_cost", "on_frontier",
                 "meets_goal", "model_calls", "run_id")


@dataclass
class LadderResult:
    """The cells, in climbing order, and the recommendation for the goal."""

    task: str
    metric: str
    goal: Goal
    cells: list[CellResult]
    recommendation: Recommendation
    stop_at_goal: bool = False
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    ladder_id: str | None = None  # the ladder as stored (hyouka.store.ladders), for the dashboard's /ladders

    @property
    def table(self) -> pd.DataFrame:
        """One row per cell: score with its 95% interval, cost per 1,000 questions, latency, steps up."""
        return pd.DataFrame([{k: c.to_dict()[k] for k in TABLE_COLUMNS} for c in self.cells],
                            columns=list(TABLE_COLUMNS))

    @property
    def frontier(self) -> list[CellResult]:
        """The cells no other cell beats on both cost and score, cheapest first."""
        return sorted((c for c in self.cells if c.on_frontier), key=lambda c: c.cost_per_1k or 0.0)

    def cell(self, model: str, rung: str) -> CellResult:
        for c in self.cells:
            if c.rung == rung and (c.model == model or c.model.endswith(f":{model}")):
                return c
        raise KeyError(f"no cell ({model}, {rung}); cells: {', '.join(c.label for c in self.cells)}")

    @property
    def model_calls(self) -> int:
        return sum(c.model_calls for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "metric": self.metric, "situation": self.goal.situation,
                "target": self.goal.target, "budget": self.goal.budget, "stop_at_goal": self.stop_at_goal,
                "dry_run": self.dry_run, "cells": [c.to_dict() for c in self.cells],
                "frontier": [c.label for c in self.frontier], "recommendation": self.recommendation.to_dict(),
                "notes": self.notes, "ladder_id": self.ladder_id}


def _models(models: ModelsArg) -> list[tuple[Any, dict[str, Any]]]:
    if models is None:
        return []
    if isinstance(models, Mapping):
        return [(spec, dict(options or {})) for spec, options in models.items()]
    if isinstance(models, (str, Path)) or not isinstance(models, Sequence):
        models = [models]
    out = []
    for item in models:
        if isinstance(item, tuple):
            spec, options = item
            out.append((spec, dict(options or {})))
        else:
            out.append((item, {}))
    return out


def _prepare(
    models: ModelsArg, tasks: str, rungs: str | Path | Sequence[Any], metric: str | None, goal: Goal,
    stop_at_goal: bool, store: Store | str | None, cache: ResponseCache | str | Path | bool,
    prices: PriceTable | str | Path | None, model_options: dict[str, Any], settings: dict[str, Any],
) -> tuple[CellSettings, list[Line]]:
    """Everything checked before any call: the task, the rungs against it, the goal, the metric."""
    task = parse_task(tasks)
    the_rungs = load_rungs(rungs)
    lines = ladder_lines([(m, {**model_options, **o}) for m, o in _models(models)], the_rungs)
    if stop_at_goal and goal.target is None and goal.budget is None:
        raise LadderError("--stop-at-goal needs a goal to stop at: give --target (good enough) or --budget")
    cell_settings = CellSettings(
        task=task, metric=metric or default_metric(task),
        store=store if isinstance(store, Store) else Store(store),
        cache=cache if isinstance(cache, (ResponseCache, bool)) else ResponseCache(cache),
        prices=load_prices(prices), **settings,
    )
    if task.kind == "data" and cell_settings.judge is None:
        from hyouka.judge.metrics import is_judge_metric

        if is_judge_metric(cell_settings.metric):
            raise LadderError(f"metric {cell_settings.metric} is graded by a judge: give --judge")
    for line in lines:
        for rung in line.rungs:
            check_rung(cell_settings, rung)
    return cell_settings, lines


def ladder(
    models: ModelsArg,
    tasks: str,
    *,
    rungs: str | Path | Sequence[str | dict[str, Any] | Rung] = "zero-shot,few-shot:3",
    metric: str | None = None,
    target: float | None = None,
    budget: float | None = None,
    stop_at_goal: bool = False,
    judge: Any = None,
    judge_options: dict[str, Any] | None = None,
    judge_max_tokens: int | None = None,
    index: Any = None,
    limit: int | None = None,
    seed: int = 0,
    mode: str = "auto",
    max_tokens: int | None = None,
    chat: bool = False,
    data_dir: str | Path | None = None,
    data_files: dict[str, str | Path] | None = None,
    language: str = "ja",
    columns: dict[str, str | None] | None = None,
    store: Store | str | None = None,
    cache: ResponseCache | str | Path | bool = True,
    prices: PriceTable | str | Path | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
    **model_options: Any,
) -> LadderResult:
    """Climb ``rungs`` with each of ``models`` on one task and recommend the cell for the goal.

    ``models``: specs or backends, ``(spec, options)`` pairs or ``{spec: options}`` (``model_options``
    go to every model). ``tasks``: one benchmark task or task file (``jsquad``), or one's own data
    (``qa.jsonl``; ``rag:qa.jsonl`` with ``index`` for retrieval rungs). ``rungs``: the shorthand
    (``zero-shot,few-shot:3,rag:4,few-shot:3+rag:4``), a YAML file, or a list (see
    :mod:`hyouka.evaluation.ladder.rungs`). ``metric``: the score climbed on (default: a benchmark
    task's headline metric). ``target`` (a score) and ``budget`` (USD per 1,000 questions) set the
    goal (see :mod:`hyouka.evaluation.ladder.analysis`); ``stop_at_goal`` stops each model's climb
    at the first rung that meets it (or, with a budget, once a rung costs more than it).
    ``progress(label)`` gives a ``(done, total)`` callback per cell. ``dry_run`` prices every cell
    instead (its ``estimate``: calls, tokens, upper cost, the judge's apart) and calls nothing. The
    other arguments are ``hyouka.run``'s and ``hyouka.evaluate``'s.
    """
    goal = Goal(target, budget)
    settings, lines = _prepare(models, tasks, rungs, metric, goal, stop_at_goal and not dry_run, store, cache,
                               prices, model_options,
                               _shared(judge, judge_options, judge_max_tokens, index, limit, seed, mode, max_tokens,
                                       chat, data_dir, data_files, language, columns))
    if dry_run:
        return _estimate(settings, lines, goal)
    cells: list[CellResult] = []
    met_before_own = False
    for number, line in enumerate(lines):
        skip_reason = None
        if stop_at_goal and line.own and met_before_own:
            skip_reason = "not run: the goal was met by a model before this one"
        for step, rung in enumerate(line.rungs):
            cell = CellResult(model=model_label(line.model), rung=rung.name, line=number, step=step,
                              metric=settings.metric)
            cells.append(cell)
            if skip_reason:
                cell.status = skip_reason
                continue
            made = run_cell(settings, line, rung, progress(cell.label) if progress else None)
            cell.model_calls, cell.cache_hits, cell.reused = made.model_calls, made.cache_hits, made.reused
            fill_cell(cell, settings.store, made.run_id, settings.prices)
            if not stop_at_goal:
                continue
            if goal.target is not None and goal.met_by(cell):  # a budget alone is met by every cheap rung: climb on
                skip_reason = f"not run: the goal was met at {rung.name}"
                met_before_own = met_before_own or not line.own
            elif goal.budget is not None and cell.cost_per_1k is None:
                skip_reason = f"not run: {rung.name} has no price to hold to the budget"
            elif goal.budget is not None and cell.cost_per_1k > goal.budget:  # type: ignore[operator]
                skip_reason = f"not run: {rung.name} already costs more than the budget"
    result = conclude(settings.task.label, settings.metric, goal, cells, seed=seed, stop_at_goal=stop_at_goal)
    from hyouka.evaluation.ladder.stored import record_ladder

    result.ladder_id = record_ladder(settings, lines, result, seed=seed)
    return result


def fill_cell(cell: CellResult, store: Store, run_id: str, prices: PriceTable) -> None:
    """A cell's numbers, measured from its run in the store."""
    cell.run_id = run_id
    for name, value in measure_cell(store, run_id, cell.metric, prices).__dict__.items():
        setattr(cell, name, value)


def conclude(task: str, metric: str, goal: Goal, cells: list[CellResult], *, seed: int = 0,
             stop_at_goal: bool = False) -> LadderResult:
    """The measured cells' steps, frontier and recommendation, as a ladder run now or read back from the store."""
    analyse(cells, goal, seed=seed)
    return LadderResult(task=task, metric=metric, goal=goal, cells=cells,
                        recommendation=recommend(cells, goal, seed=seed), stop_at_goal=stop_at_goal,
                        notes=_notes(cells))


def _shared(judge: Any, judge_options: dict[str, Any] | None, judge_max_tokens: int | None, index: Any,
            limit: int | None, seed: int, mode: str, max_tokens: int | None, chat: bool,
            data_dir: str | Path | None, data_files: dict[str, str | Path] | None, language: str,
            columns: dict[str, str | None] | None) -> dict[str, Any]:
    return {"judge": judge, "judge_options": dict(judge_options or {}), "judge_max_tokens": judge_max_tokens,
            "index": index, "limit": limit, "seed": seed, "mode": mode, "max_tokens": max_tokens, "chat": chat,
            "data_dir": data_dir, "data_files": data_files, "language": language, "columns": dict(columns or {})}


def _notes(cells: Sequence[CellResult]) -> list[str]:
    notes = []
    unpriced = [c.label for c in cells if c.ran and c.cost_per_1k is None]
    if unpriced:
        notes.append(f"no price for {', '.join(unpriced)}: give one in a --prices file to rank them by cost")
    unscored = [c.label for c in cells if c.ran and c.score is None]
    if unscored:
        notes.append(f"no score for {', '.join(unscored)} (their calls failed: `hyouka show RUN` lists the errors)")
    return notes


def _estimate(settings: CellSettings, lines: list[Line], goal: Goal) -> LadderResult:
    """Every cell priced (all of them: no score is known to stop at); calls nothing.

    Each cell's ``estimate`` holds its calls, tokens and upper cost, the model's and the judge's apart.
    """
    cells = []
    for number, line in enumerate(lines):
        for step, rung in enumerate(line.rungs):
            cell = CellResult(model=model_label(line.model), rung=rung.name, line=number, step=step,
                              metric=settings.metric, status="dry run")
            cells.append(cell)
            try:
                cell.estimate = estimate_cell(settings, line, rung).__dict__
            except LadderError as exc:  # a rung this dry run cannot price: said, the others priced
                cell.status = f"not priced: {exc}"
    notes = [_estimate_note(cells), *(f"{c.label}: {c.status}" for c in cells if c.estimate is None),
             *(f"{c.label}: {c.estimate['retrieval']}" for c in cells if (c.estimate or {}).get("retrieval"))]
    rec = Recommendation(goal.situation, goal, None, "A dry run makes no call: no cell has a score yet.")
    return LadderResult(task=settings.task.label, metric=settings.metric, goal=goal, cells=cells, recommendation=rec,
                        dry_run=True, notes=notes)


def _estimate_note(cells: Sequence[CellResult]) -> str:
    """The whole ladder's upper estimate: the models' calls and cost, and the judge's apart."""
    estimates = [c.estimate for c in cells if c.estimate]
    unpriced = len(cells) - len(estimates)

    def total(key: str) -> str:
        values = [e.get(key) for e in estimates]
        if any(v is None for v in values):
            return "cost unknown (no price)"
        return f"${sum(values):.4f}" + (f" without {unpriced} cell(s) not priced" if unpriced else "")

    calls = sum(e["n_calls"] for e in estimates)
    judged = sum(e.get("judge_calls", 0) for e in estimates)
    note = f"upper estimate for the whole ladder: {calls} model calls, {total('cost_usd')}"
    return note + (f"; {judged} judge calls, {total('judge_cost_usd')}" if judged else "")
