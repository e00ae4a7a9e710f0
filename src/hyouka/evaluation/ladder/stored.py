"""Ladders kept in the store: each ``hyouka.ladder`` records what it climbed and its cells' runs, and
:func:`load_ladder` reads one back by measuring its cells again and concluding as the ladder did (the same
analysis, the same recommendation), for the dashboard and anyone with the store.

The prices the ladder used are kept with it (the rates of each model it priced), so a ladder read back
costs its cells as it did when it ran, whatever price table the reader has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyouka.engine.accounting import price_for
from hyouka.evaluation.ladder.analysis import CellResult, Goal
from hyouka.evaluation.ladder.cells import CellSettings, LadderError, model_label
from hyouka.evaluation.ladder.rungs import Line
from hyouka.models.registry import recordable_options
from hyouka.pricing.table import Price, PriceTable, load_prices
from hyouka.store.errors import RunNotFoundError
from hyouka.store.ladders import LadderStore
from hyouka.store.store import Store
from hyouka.store.subject import subject_model

if TYPE_CHECKING:
    from hyouka.evaluation.ladder.core import LadderResult

__all__ = ["list_ladders", "load_ladder", "record_ladder"]

_LAYER = "the ladder's own prices"


def _rungs(lines: list[Line]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for line in lines:
        for rung in line.rungs:
            data = rung.model_dump()
            data["model_options"] = recordable_options(data["model_options"])
            seen.setdefault(rung.name, data)
    return list(seen.values())


def _prices(settings: CellSettings, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rates of every model the cells' runs priced (the model called, and a judge run's evaluated model)."""
    out: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        run = settings.store.get_run(run_id)
        for name, identity in ((run["model"], run.get("model_identity")),
                               (subject_model(run), (run.get("config") or {}).get("model_identity"))):
            found = price_for(settings.prices, name, identity)
            if found is not None:
                out[name] = found.price.model_dump()
    return out


def record_ladder(settings: CellSettings, lines: list[Line], result: LadderResult, *, seed: int = 0) -> str:
    """Store the ladder just climbed (its cells stay ordinary runs); returns its id."""
    run_ids = [c.run_id for c in result.cells if c.run_id]
    spec = {"models": [model_label(line.model) for line in lines], "rungs": _rungs(lines),
            "stop_at_goal": result.stop_at_goal, "seed": seed, "prices": _prices(settings, run_ids)}
    cells = [{"model": c.model, "rung": c.rung, "line": c.line, "step": c.step, "status": c.status,
              "run_id": c.run_id} for c in result.cells]
    goal = {"target": result.goal.target, "budget": result.goal.budget}
    return LadderStore(settings.store).save(task=result.task, metric=result.metric, goal=goal, spec=spec,
                                            cells=cells)


def _open(store: Store | str | None) -> Store:
    return store if isinstance(store, Store) else Store(store)


def list_ladders(store: Store | str | None = None) -> list[dict[str, Any]]:
    """Every stored ladder, the one climbed last first: id, when, task, metric, goal, models, rungs, cells."""
    out = []
    for row in LadderStore(_open(store)).list():
        goal = Goal(**row["goal"])
        out.append({"ladder_id": row["id"], "created_at": row["created_at"], "seen_at": row["seen_at"],
                    "task": row["task"], "metric": row["metric"], "situation": goal.situation, **row["goal"],
                    "models": row["spec"].get("models", []),
                    "rungs": [r.get("name") for r in row["spec"].get("rungs", [])], "n_cells": len(row["cells"]),
                    "n_run": sum(1 for c in row["cells"] if c.get("run_id"))})
    return out


def load_ladder(ladder_id: str, *, store: Store | str | None = None,
                prices: PriceTable | str | None = None) -> LadderResult:
    """A stored ladder as :func:`hyouka.ladder` returned it: each cell measured from its run, then the steps,
    the frontier and the recommendation (``prices``: consulted after the ladder's own, for models it did not
    price). A cell whose run is gone from the store says so and takes no part."""
    from hyouka.evaluation.ladder.core import conclude, fill_cell

    db = _open(store)
    row = LadderStore(db).get(ladder_id)
    base = load_prices(prices)
    own = {name: Price(**rates) for name, rates in (row["spec"].get("prices") or {}).items()}
    table = PriceTable([(_LAYER, "", own), *base.layers])
    cells = []
    for stored in row["cells"]:
        cell = CellResult(model=stored["model"], rung=stored["rung"], line=stored["line"], step=stored["step"],
                          status=stored["status"], metric=row["metric"])
        cells.append(cell)
        if cell.ran and stored.get("run_id"):
            try:
                fill_cell(cell, db, stored["run_id"], table)
            except (RunNotFoundError, LadderError) as exc:
                cell.run_id, cell.status = stored["run_id"], f"not measured: {exc}"
    spec = row["spec"]
    result = conclude(row["task"], row["metric"], Goal(**row["goal"]), cells, seed=int(spec.get("seed", 0)),
                      stop_at_goal=bool(spec.get("stop_at_goal")))
    result.ladder_id = row["id"]
    return result
