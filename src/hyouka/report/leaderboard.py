"""Models x tasks, with the suite average, from the completed runs in the store.

A row is one model under one setting (few-shot count, prompt family, and the
mode of its multiple-choice tasks). Tasks that have a single mode (JSTS and
JSQuAD are generated) join every row of the same model and setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyouka.store.store import Store
from hyouka.tasks.registry import SuiteSpec, builtin_suites, load_task


@dataclass
class Cell:
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_scored: int
    n_total: int
    run_id: str


@dataclass
class Row:
    model: str
    setting: str
    cells: dict[str, Cell] = field(default_factory=dict)
    average: float | None = None
    n_tasks_averaged: int = 0


@dataclass
class Leaderboard:
    tasks: list[str]
    rows: list[Row]
    suite: str | None

    def to_records(self) -> list[dict[str, Any]]:
        out = []
        for row in self.rows:
            record: dict[str, Any] = {"model": row.model, "setting": row.setting}
            for task in self.tasks:
                cell = row.cells.get(task)
                record[task] = None if cell is None else {
                    "metric": cell.metric,
                    "value": cell.value,
                    "ci_low": cell.ci_low,
                    "ci_high": cell.ci_high,
                    "n_scored": cell.n_scored,
                    "n_total": cell.n_total,
                    "run_id": cell.run_id,
                }
            record["average"] = row.average
            record["n_tasks_averaged"] = row.n_tasks_averaged
            out.append(record)
        return out


def _headline(task: str, suite: SuiteSpec | None) -> str:
    if suite is not None:
        for entry in suite.tasks:
            if entry.task == task:
                return entry.metric
    try:
        return load_task(task).metric_list[0].metric
    except ValueError:
        return ""


def build_leaderboard(store: Store, suite: str | None = "jglue", model: str | None = None) -> Leaderboard:
    """The latest completed benchmark run per model, setting and task."""
    suite_spec = builtin_suites().get(suite) if suite else None
    runs = [r for r in store.list_runs(status="completed") if r["kind"] == "benchmark"]
    if model:
        runs = [r for r in runs if r["model"] == model]
    if suite_spec is not None:
        wanted = {e.task for e in suite_spec.tasks}
        runs = [r for r in runs if r["task"] in wanted]
    aggregates = store.all_aggregates(r["id"] for r in runs)

    def base_setting(run: dict[str, Any]) -> str:
        cfg = run["config"]
        return f"{cfg.get('num_fewshot', 0)}-shot {cfg.get('prompt_family', 'plain')}"

    rows: dict[tuple[str, str], Row] = {}
    single_mode: list[dict[str, Any]] = []
    for run in runs:  # oldest first, so later runs overwrite earlier cells
        try:
            multi = len(load_task(run["task"]).modes) > 1
        except ValueError:
            multi = True
        if not multi:
            single_mode.append(run)
            continue
        key = (run["model"], f"{base_setting(run)} {run['mode']}")
        row = rows.setdefault(key, Row(run["model"], key[1]))
        row.cells[run["task"]] = _cell(run, aggregates[run["id"]], _headline(run["task"], suite_spec))
    for run in single_mode:
        targets = [r for (m, s), r in rows.items() if m == run["model"] and s.startswith(base_setting(run) + " ")]
        if not targets:
            key = (run["model"], f"{base_setting(run)} {run['mode']}")
            targets = [rows.setdefault(key, Row(run["model"], key[1]))]
        for row in targets:
            row.cells[run["task"]] = _cell(run, aggregates[run["id"]], _headline(run["task"], suite_spec))

    tasks = [e.task for e in suite_spec.tasks] if suite_spec else sorted({r["task"] for r in runs})
    weights = {e.task: e.weight for e in suite_spec.tasks} if suite_spec else {}
    for row in rows.values():
        present = [(t, row.cells[t].value) for t in tasks if t in row.cells and row.cells[t].value is not None]
        if present:
            total_weight = sum(weights.get(t, 1.0) for t, _ in present)
            row.average = sum(weights.get(t, 1.0) * v for t, v in present) / total_weight  # type: ignore[operator]
            row.n_tasks_averaged = len(present)
    ordered = sorted(rows.values(), key=lambda r: (r.average is None, -(r.average or 0.0)))
    return Leaderboard(tasks=[t for t in tasks if any(t in r.cells for r in ordered)] or tasks, rows=ordered,
                       suite=suite if suite_spec else None)


def _cell(run: dict[str, Any], aggregates: dict[str, dict[str, Any]], metric: str) -> Cell:
    agg = aggregates.get(metric) or {}
    return Cell(
        metric=metric,
        value=agg.get("value"),
        ci_low=agg.get("ci_low"),
        ci_high=agg.get("ci_high"),
        n_scored=agg.get("n_scored", 0),
        n_total=agg.get("n_total", run["n_samples"]),
        run_id=run["id"],
    )
