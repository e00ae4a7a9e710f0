"""Models x tasks, with the suite average and its interval, from the completed runs in the store.

A row is one model under one setting (few-shot count, prompt family, and the
mode of its multiple-choice tasks). Tasks that have a single mode (JSTS and
JSQuAD are generated) join every row of the same model and setting; judge runs
(LLM-as-a-judge scores of a model's answers) join every row of the model they judged.

The average is weighted by the suite's weights. Without a suite, tasks count equally, and
judge scores (on their own scales) are shown beside benchmarks but not averaged with them.
A lower-is-better entry enters it as
``1 - value`` when its value lies in [0, 1] and is left out otherwise. Its 95% interval
combines the tasks' bootstrap standard errors (tasks are independent samples):
``se = sqrt(sum((w_i / W)^2 * se_i^2))``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hyouka.store.store import Store
from hyouka.tasks.registry import SuiteSpec, builtin_suites, load_task
from hyouka.yamlio import load_yaml

_Z95 = 1.959963984540054
_SUBJECT_KEYS = ("subject_model", "target_model", "candidate_model", "model_under_test", "evaluated_model")
_JUDGE_HEADLINES = ("score", "mean_score", "win_rate")


@dataclass
class Cell:
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_scored: int
    n_total: int
    run_id: str
    stderr: float | None = None
    lower_is_better: bool = False
    kind: str = "benchmark"


@dataclass
class Row:
    model: str
    setting: str
    cells: dict[str, Cell] = field(default_factory=dict)
    average: float | None = None
    n_tasks_averaged: int = 0
    average_ci_low: float | None = None
    average_ci_high: float | None = None

    @property
    def label(self) -> str:
        return f"{self.model} ({self.setting})"

    @property
    def run_ids(self) -> list[str]:
        return list(dict.fromkeys(c.run_id for c in self.cells.values()))


@dataclass
class Leaderboard:
    tasks: list[str]
    rows: list[Row]
    suite: str | None
    weights: dict[str, float] = field(default_factory=dict)

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
                    "lower_is_better": cell.lower_is_better,
                }
            record["average"] = row.average
            record["average_ci_low"] = row.average_ci_low
            record["average_ci_high"] = row.average_ci_high
            record["n_tasks_averaged"] = row.n_tasks_averaged
            out.append(record)
        return out


def subject_model(run: dict[str, Any]) -> str:
    """The model a run evaluates: the run's model, or for a judge run the model whose answers were judged."""
    if run.get("kind", "benchmark") != "benchmark":
        config = run.get("config") or {}
        for key in _SUBJECT_KEYS:
            if isinstance(config.get(key), str) and config[key]:
                return config[key]
    return run["model"]


def _entry(task: str, suite: SuiteSpec | None) -> tuple[str, bool] | None:
    if suite is not None:
        for entry in suite.tasks:
            if entry.task == task:
                return entry.metric, entry.lower_is_better
    return None


def _headline(task: str, suite: SuiteSpec | None, aggregates: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    """The metric shown for a task, and whether lower is better."""
    found = _entry(task, suite)
    if found is not None:
        return found
    try:
        metric = load_task(task).metric_list[0].metric
    except (ValueError, OSError):
        metric = next((m for m in _JUDGE_HEADLINES if m in aggregates), next(iter(sorted(aggregates)), ""))
    agg = aggregates.get(metric) or {}
    return metric, not agg.get("higher_is_better", True)


def _joins_others(run: dict[str, Any]) -> bool:
    """Runs whose task has one mode, and judge runs, join every row of their model and setting."""
    if run.get("kind", "benchmark") != "benchmark":
        return True
    try:
        return len(load_task(run["task"]).modes) <= 1
    except (ValueError, OSError):
        return False


def _resolve_suite(suite: str | SuiteSpec | None) -> SuiteSpec | None:
    if isinstance(suite, SuiteSpec):
        return suite
    return builtin_suites().get(suite) if suite else None


def build_leaderboard(
    store: Store,
    suite: str | SuiteSpec | None = "jglue",
    model: str | None = None,
    *,
    run_ids: Iterable[str] | None = None,
    kinds: Iterable[str] = ("benchmark",),
) -> Leaderboard:
    """The latest completed run per model, setting and task (of ``run_ids`` when given)."""
    suite_spec = _resolve_suite(suite)
    wanted_kinds = set(kinds)
    runs = [r for r in store.list_runs(status="completed") if r["kind"] in wanted_kinds and r["kind"] != "pairwise"]
    if run_ids is not None:
        ids = set(run_ids)
        runs = [r for r in runs if r["id"] in ids]
    if model:
        runs = [r for r in runs if subject_model(r) == model]
    if suite_spec is not None:
        wanted = {e.task for e in suite_spec.tasks}
        runs = [r for r in runs if r["task"] in wanted]
    aggregates = store.all_aggregates(r["id"] for r in runs)

    def base_setting(run: dict[str, Any]) -> str:
        cfg = run["config"]
        return f"{cfg.get('num_fewshot', 0)}-shot {cfg.get('prompt_family') or 'task layout'}"

    rows: dict[tuple[str, str], Row] = {}
    joiners: list[dict[str, Any]] = []
    for run in runs:  # oldest first, so later runs overwrite earlier cells
        if _joins_others(run):
            joiners.append(run)
            continue
        key = (run["model"], f"{base_setting(run)} {run['mode']}")
        row = rows.setdefault(key, Row(run["model"], key[1]))
        row.cells[run["task"]] = _cell(run, aggregates[run["id"]], suite_spec)
    for run in joiners:
        subject = subject_model(run)
        if run.get("kind", "benchmark") == "benchmark":
            targets = [r for (m, s), r in rows.items() if m == subject and s.startswith(base_setting(run) + " ")]
            fallback = (subject, f"{base_setting(run)} {run['mode']}")
        else:
            targets = [r for (m, _), r in rows.items() if m == subject]
            fallback = (subject, "judged")
        if not targets:
            targets = [rows.setdefault(fallback, Row(subject, fallback[1]))]
        for row in targets:
            row.cells[run["task"]] = _cell(run, aggregates[run["id"]], suite_spec)

    tasks = [e.task for e in suite_spec.tasks] if suite_spec else sorted({r["task"] for r in runs})
    if suite_spec is not None:
        weights = {e.task: e.weight for e in suite_spec.tasks}
    elif any(r.get("kind", "benchmark") == "benchmark" for r in runs):
        # judge scores are on their own scales: shown beside benchmarks, not averaged with them
        weights = {r["task"]: 0.0 for r in runs if r.get("kind", "benchmark") != "benchmark"}
    else:
        weights = {}
    for row in rows.values():
        _average(row, tasks, weights)
    ordered = sorted(rows.values(), key=lambda r: (r.average is None, -(r.average or 0.0), r.model, r.setting))
    shown = [t for t in tasks if any(t in r.cells for r in ordered)] or tasks
    return Leaderboard(tasks=shown, rows=ordered, suite=suite_spec.suite if suite_spec else None,
                       weights={t: weights.get(t, 1.0) for t in shown})


def _average(row: Row, tasks: list[str], weights: dict[str, float]) -> None:
    """Weighted mean of the row's cells and its normal-approximation 95% interval."""
    terms: list[tuple[float, float, float | None]] = []  # weight, value, stderr
    for task in tasks:
        cell = row.cells.get(task)
        if cell is None or cell.value is None or math.isnan(cell.value) or weights.get(task, 1.0) <= 0:
            continue
        value = cell.value
        if cell.lower_is_better:
            if not 0.0 <= value <= 1.0:
                continue
            value = 1.0 - value
        terms.append((weights.get(task, 1.0), value, cell.stderr))
    if not terms:
        return
    total = sum(w for w, _, _ in terms)
    row.average = sum(w * v for w, v, _ in terms) / total
    row.n_tasks_averaged = len(terms)
    if all(se is not None for _, _, se in terms):
        se = math.sqrt(sum((w / total) ** 2 * se**2 for w, _, se in terms))  # type: ignore[operator]
        row.average_ci_low = row.average - _Z95 * se
        row.average_ci_high = row.average + _Z95 * se


def _cell(run: dict[str, Any], aggregates: dict[str, dict[str, Any]], suite: SuiteSpec | None) -> Cell:
    metric, lower = _headline(run["task"], suite, aggregates)
    agg = aggregates.get(metric) or {}
    return Cell(
        metric=metric,
        value=agg.get("value"),
        ci_low=agg.get("ci_low"),
        ci_high=agg.get("ci_high"),
        n_scored=agg.get("n_scored", 0),
        n_total=agg.get("n_total", run["n_samples"]),
        run_id=run["id"],
        stderr=agg.get("stderr"),
        lower_is_better=lower,
        kind=run.get("kind", "benchmark"),
    )


def load_suite(name_or_path: str | None) -> SuiteSpec | None:
    """A built-in suite by name, or a suite YAML file (tasks, metrics, weights, lower_is_better)."""
    if not name_or_path or name_or_path == "none":
        return None
    suites = builtin_suites()
    if name_or_path in suites:
        return suites[name_or_path]
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            return SuiteSpec.model_validate(load_yaml(path.read_text(encoding="utf-8")))
        except (ValidationError, yaml.YAMLError) as exc:
            raise ValueError(f"suite file {path} is invalid: {exc}") from exc
    raise ValueError(f"unknown suite {name_or_path!r}; built-in suites: {', '.join(suites)}, or a suite YAML file")
