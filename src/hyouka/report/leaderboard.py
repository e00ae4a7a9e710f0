"""Models x tasks from the completed runs in the store, one table per kind of evaluation.

A row is one model under one *setting*: everything in a run's configuration that can change a
number (few-shot count, prompt family, mode, seed, ``limit``, ``max_tokens``, chat, dtype and
the other backend options, the model's identity, the judge). Runs of different settings never
share a row, so a ``--limit 3`` probe is a row of its own and never replaces the full run.
Within a row a task's cell is the newest run of that task with the same task content (task
hash and number of documents); a run of another task version starts another row.

Tasks with a single mode (JSTS and JSQuAD are generated) join every row of the same model
whose setting differs from theirs only by mode; judge runs join the rows of the model they
judged. With a suite, the average (:func:`hyouka.metrics.suite.suite_average`, the one
``hyouka.run`` uses too) is given only to rows that have every task of the suite; the other
rows are listed after them, marked partial. Without a suite there is no average: unrelated
tasks and metrics are not averaged.

:func:`build_leaderboards` is what the ``hyouka leaderboard`` command and the report show: a
table per suite (JGLUE), one for Japanese MT-Bench, one for ``hyouka eval`` runs and one for
other tasks, each only when the store holds such runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyouka.metrics.suite import SuiteTerm, suite_average
from hyouka.store.subject import subject_model
from hyouka.tasks.catalog import SuiteFacts, builtin_catalog, task_facts

if TYPE_CHECKING:
    from hyouka.store.reader import SQLiteReader
    from hyouka.store.store import Store
    from hyouka.tasks.registry import SuiteSpec

    Suite = SuiteSpec | SuiteFacts  # a suite as given (SuiteSpec) or built in (read from the task catalog)

__all__ = ["Cell", "Leaderboard", "Row", "build_leaderboard", "build_leaderboards", "load_suite", "run_setting",
           "subject_model"]

_JUDGE_HEADLINES = ("score", "mean_score", "win_rate")
MT_BENCH_TASK = "ja_mt_bench"
# configuration keys that describe the task and its data (a cell's content) or name the model
# (the row's model), not the setting; throughput options change no answer
_NOT_SETTING = frozenset({"task", "task_source", "task_version", "task_hash", "data_dir", "data_file", "data",
                          "questions_sha256", "model", "subject_model", "subject_name"})
_THROUGHPUT = frozenset({"batch_size", "concurrency"})
_UNUSED_COLUMNS = ("model_identity", "versions", "stats")  # the board reads a run's config, not these


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
    content: str = ""  # the task's hash and number of documents: runs of other content start another row
    setting_key: str = ""  # digest of the run's setting: a run of another setting never takes this cell


@dataclass
class Row:
    model: str
    setting: str
    cells: dict[str, Cell] = field(default_factory=dict)
    average: float | None = None
    n_tasks_averaged: int = 0
    average_ci_low: float | None = None
    average_ci_high: float | None = None
    missing: list[str] = field(default_factory=list)  # suite tasks without a value (a partial row)
    settings: dict[str, Any] = field(default_factory=dict)  # the setting, as data
    key: str = ""  # digest of the setting (mode included)

    @property
    def label(self) -> str:
        return f"{self.model} ({self.setting})"

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def run_ids(self) -> list[str]:
        return list(dict.fromkeys(c.run_id for c in self.cells.values()))


@dataclass
class Leaderboard:
    tasks: list[str]
    rows: list[Row]
    suite: str | None
    weights: dict[str, float] = field(default_factory=dict)
    title: str = ""
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)  # a suite's headline metric per task

    @property
    def has_average(self) -> bool:
        """Whether rows are averaged (only under a suite)."""
        return self.suite is not None

    def to_records(self) -> list[dict[str, Any]]:
        out = []
        for row in self.rows:
            record: dict[str, Any] = {"table": self.title, "suite": self.suite, "model": row.model,
                                      "setting": row.setting, "settings": row.settings}
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
            record["partial"] = row.partial
            record["missing"] = list(row.missing)
            out.append(record)
        return out


def run_setting(run: dict[str, Any]) -> dict[str, Any]:
    """What in a run's configuration can change its numbers, besides the task and the model's name."""
    config = run.get("config") or {}
    out = {k: v for k, v in config.items() if k not in _NOT_SETTING}
    for key in ("model_options", "judge_options"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in _THROUGHPUT}
    if run.get("kind", "benchmark") != "benchmark" and "judge" not in out:
        out["judge"] = run["model"]  # a judge run's model is its judge
    out.setdefault("mode", run.get("mode"))
    return out


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def _base_key(settings: dict[str, Any]) -> str:
    """Digest of a setting without its mode: rows of one base differ only by mode."""
    return _digest({k: v for k, v in settings.items() if k != "mode"})


def _content(run: dict[str, Any]) -> str:
    """The task's content in a run: hash of the task (or of its data) and the number of documents."""
    config = run.get("config") or {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    source = run.get("task_hash") or config.get("questions_sha256") or data.get("sha256") or ""
    return f"{source}:{run.get('n_samples')}"


def _label(settings: dict[str, Any]) -> str:
    """A short reading of a setting: the usual parts, then what differs from the defaults."""
    parts = []
    if "num_fewshot" in settings or "prompt_family" in settings:
        parts.append(f"{settings.get('num_fewshot', 0)}-shot {settings.get('prompt_family') or 'task layout'}")
    if settings.get("mode"):
        parts.append(str(settings["mode"]))
    if settings.get("judge"):
        parts.append(f"judge {settings['judge']}")
    if settings.get("limit") is not None:
        parts.append(f"limit {settings['limit']}")
    options = settings.get("model_options") or {}
    if options.get("dtype"):
        parts.append(f"dtype {options['dtype']}")
    if settings.get("max_tokens") is not None:
        parts.append(f"max_tokens {settings['max_tokens']}")
    if settings.get("judge_max_tokens") is not None:
        parts.append(f"judge_max_tokens {settings['judge_max_tokens']}")
    if settings.get("chat"):
        parts.append("chat")
    if settings.get("seed"):
        parts.append(f"seed {settings['seed']}")
    return " ".join(parts) or "default"


def _entry(task: str, suite: Suite | None) -> tuple[str, bool] | None:
    if suite is not None:
        for entry in suite.tasks:
            if entry.task == task:
                return entry.metric, entry.lower_is_better
    return None


def _headline(task: str, suite: Suite | None, aggregates: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    """The metric shown for a task, and whether lower is better."""
    found = _entry(task, suite)
    if found is not None:
        return found
    try:
        metric = _task_facts(task)[0]
    except (ValueError, OSError):
        metric = next((m for m in _JUDGE_HEADLINES if m in aggregates), next(iter(sorted(aggregates)), ""))
    agg = aggregates.get(metric) or {}
    return metric, not agg.get("higher_is_better", True)


@lru_cache(maxsize=256)
def _task_facts(task: str) -> tuple[str, int]:
    """A task's first metric and its number of modes, read once per task (a board of 1,000 runs asks 2,000 times)."""
    facts = task_facts(task)
    return facts.metrics[0], len(facts.modes)


def _single_mode(run: dict[str, Any]) -> bool:
    """A benchmark task with one mode: its runs join the rows of every mode."""
    try:
        return _task_facts(run["task"])[1] <= 1
    except (ValueError, OSError):
        return False


def _resolve_suite(suite: str | Suite | None) -> Suite | None:
    """A suite given as a spec, a built-in suite's name (from the task catalog: no pydantic), or a suite file."""
    if suite is None or not isinstance(suite, str):
        return suite
    if suite in ("", "none", "auto"):
        return None
    return builtin_catalog().suites.get(suite) or load_suite(suite)


class _Rows:
    """Rows keyed by model and setting; a run goes to a row that lacks its task or has the same content.

    Rows are looked up among their model's only, and each run's setting is digested once: a store
    of a thousand models builds its board in linear time.
    """

    def __init__(self, suite: Suite | None, aggregates: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.suite, self.aggregates = suite, aggregates
        self.rows: list[Row] = []  # in order of creation
        self._by_model: dict[str, list[Row]] = {}  # model -> its rows, in order of creation
        self._keys: dict[str, str] = {}  # run id -> digest of its setting
        self._bases: dict[str, str] = {}  # a row's key -> digest of its setting without the mode

    def _key(self, run: dict[str, Any]) -> str:
        key = self._keys.get(run["id"])
        if key is None:
            key = self._keys[run["id"]] = _digest(run_setting(run))
        return key

    def _base(self, row: Row) -> str:
        base = self._bases.get(row.key)
        if base is None:
            base = self._bases[row.key] = _base_key(row.settings)
        return base

    def _fits(self, row: Row, run: dict[str, Any]) -> bool:
        """The row lacks the run's task, or holds a run of the same task content and setting."""
        cell = row.cells.get(run["task"])
        return cell is None or (cell.content == _content(run) and cell.setting_key == self._key(run))

    def _put(self, row: Row, run: dict[str, Any]) -> None:
        if run["task"] not in row.cells:  # runs come newest first: the newest of a content and setting wins
            cell = _cell(run, self.aggregates[run["id"]], self.suite)
            cell.setting_key = self._key(run)
            row.cells[run["task"]] = cell

    def _new(self, model: str, run: dict[str, Any]) -> Row:
        """A new row for ``model`` under the setting of ``run``."""
        settings = run_setting(run)
        row = Row(model, _label(settings), settings=settings, key=self._key(run))
        self.rows.append(row)
        self._by_model.setdefault(model, []).append(row)
        return row

    def add(self, run: dict[str, Any]) -> None:
        """A benchmark run of a multi-mode task: the row of exactly its setting."""
        model, key = run["model"], self._key(run)
        for row in self._by_model.get(model, ()):
            if row.key == key and self._fits(row, run):
                self._put(row, run)
                return
        self._put(self._new(model, run), run)

    def join(self, run: dict[str, Any]) -> None:
        """A single-mode task's run joins every row whose setting differs only by mode; a judge run,
        every row of the model it judged (of the same identity, when recorded)."""
        model = subject_model(run)
        rows = self._by_model.get(model, ())
        if run.get("kind", "benchmark") == "benchmark":
            base = _base_key(run_setting(run))
            targets = [row for row in rows if self._base(row) == base and self._fits(row, run)]
        else:
            identity = (run.get("config") or {}).get("model_identity")
            targets = [row for row in rows if self._fits(row, run)
                       and (not identity or row.settings.get("model_identity") in (None, identity))]
        if not targets:
            targets = [self._new(model, run)]
        for row in targets:
            self._put(row, run)


def build_leaderboard(
    store: Store | SQLiteReader,
    suite: str | Suite | None = "jglue",
    model: str | None = None,
    *,
    run_ids: Iterable[str] | None = None,
    kinds: Iterable[str] = ("benchmark",),
    runs: list[dict[str, Any]] | None = None,
    title: str | None = None,
) -> Leaderboard:
    """One table of the completed runs (of ``run_ids``, or ``runs`` given already read) of ``kinds``.

    With a suite, its tasks only, averaged for the rows that have all of them; without one, every
    task and no average.
    """
    suite_spec = _resolve_suite(suite)
    wanted_kinds = set(kinds) - {"pairwise"}
    if runs is None:
        runs = _completed(store, run_ids)
    runs = [r for r in runs if r.get("kind", "benchmark") in wanted_kinds]
    if model:
        runs = [r for r in runs if subject_model(r) == model]
    if suite_spec is not None:
        wanted = {e.task for e in suite_spec.tasks}
        runs = [r for r in runs if r["task"] in wanted]
    aggregates = store.all_aggregates(r["id"] for r in runs)

    rows = _Rows(suite_spec, aggregates)
    newest_first = sorted(runs, key=lambda r: r["created_at"], reverse=True)
    benchmark = [r for r in newest_first if r.get("kind", "benchmark") == "benchmark"]
    for run in benchmark:
        if not _single_mode(run):
            rows.add(run)
    for run in benchmark:
        if _single_mode(run):
            rows.join(run)
    for run in newest_first:
        if run.get("kind", "benchmark") != "benchmark":
            rows.join(run)
    built = list(rows.rows)
    _disambiguate(built)

    tasks = [e.task for e in suite_spec.tasks] if suite_spec else sorted({r["task"] for r in runs})
    weights = {e.task: e.weight for e in suite_spec.tasks} if suite_spec else {}
    notes: list[str] = []
    if suite_spec is not None:
        notes = sorted({note for row in built if (note := _average(row, suite_spec))})
    ordered = sorted(built, key=lambda r: (r.partial, r.average is None, -(r.average or 0.0), r.model, r.setting))
    shown = [t for t in tasks if any(t in r.cells for r in ordered)] if suite_spec is None else tasks
    name = suite_spec.suite if suite_spec else None
    return Leaderboard(tasks=shown, rows=ordered, suite=name, weights={t: weights.get(t, 1.0) for t in shown},
                       title=title or (f"suite {name}" if name else "all tasks"), notes=notes,
                       metrics={e.task: e.metric + (" ↓" if e.lower_is_better else "")
                                for e in (suite_spec.tasks if suite_spec else [])})


def _completed(store: Store | SQLiteReader, run_ids: Iterable[str] | None) -> list[dict[str, Any]]:
    runs = store.list_runs(status="completed", omit=_UNUSED_COLUMNS)
    if run_ids is not None:
        ids = set(run_ids)
        runs = [r for r in runs if r["id"] in ids]
    return runs


def _disambiguate(rows: list[Row]) -> None:
    """Rows of one model whose labels read alike get their setting's digest."""
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        seen[(row.model, row.setting)] = seen.get((row.model, row.setting), 0) + 1
    for row in rows:
        if seen[(row.model, row.setting)] > 1:
            row.setting = f"{row.setting} #{row.key[:6]}"


def _average(row: Row, suite: Suite) -> str | None:
    """Set the row's average and what it misses; returns the average's note, if any."""
    terms = []
    for entry in suite.tasks:
        cell = row.cells.get(entry.task)
        terms.append(SuiteTerm(entry.task, cell.value if cell else None, entry.weight, entry.lower_is_better,
                               cell.stderr if cell else None))
    avg = suite_average(terms)
    row.average, row.average_ci_low, row.average_ci_high = avg.value, avg.ci_low, avg.ci_high
    row.n_tasks_averaged = len(avg.tasks) if avg.complete else 0
    row.missing = list(avg.missing)
    return avg.note


def _cell(run: dict[str, Any], aggregates: dict[str, dict[str, Any]], suite: Suite | None) -> Cell:
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
        content=_content(run),
    )


def _table_of(run: dict[str, Any], suites: dict[str, SuiteFacts]) -> str | None:
    """Which default table a run belongs to: a suite's name, ``mt_bench``, ``eval`` or ``other``."""
    kind = run.get("kind", "benchmark")
    if kind == "pairwise":
        return None
    if run["task"] == MT_BENCH_TASK:
        return "mt_bench"
    if run["task"].startswith("eval:"):
        return "eval"
    if kind != "benchmark":
        return "other"
    return next((name for name, s in suites.items() if any(e.task == run["task"] for e in s.tasks)), "other")


def build_leaderboards(
    store: Store | SQLiteReader,
    suite: str | Suite | None = None,
    model: str | None = None,
    *,
    run_ids: Iterable[str] | None = None,
) -> list[Leaderboard]:
    """The tables ``hyouka leaderboard`` and the report show.

    ``suite`` ``None`` (or ``"auto"``): what the store holds, a table per built-in suite (its
    average), one for Japanese MT-Bench, one for ``hyouka eval`` runs and one for other tasks,
    each only when it has runs. A suite (name, file or spec): that suite's table alone.
    ``"none"``: one table of every task and judge score, with no average.
    """
    runs = _completed(store, run_ids)
    kinds = ("benchmark", "judge")
    if (suite is not None and not isinstance(suite, str)) or (suite and suite not in ("auto", "none")):
        return [build_leaderboard(store, suite, model, runs=runs, kinds=kinds)]
    if suite == "none":
        return [build_leaderboard(store, None, model, runs=runs, kinds=kinds, title="all tasks (no average)")]
    suites = builtin_catalog().suites
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        table = _table_of(run, suites)
        if table is not None:
            groups.setdefault(table, []).append(run)
    boards = []
    for name in suites:
        if name in groups:
            boards.append(build_leaderboard(store, suites[name], model, runs=groups[name], kinds=kinds,
                                            title=f"suite {name}"))
    titles = {"mt_bench": "Japanese MT-Bench (judge scores, 1-10)", "eval": "hyouka eval runs",
              "other": "other tasks"}
    for name, title in titles.items():
        if name in groups:
            boards.append(build_leaderboard(store, None, model, runs=groups[name], kinds=kinds, title=title))
    return [b for b in boards if b.rows]


def load_suite(name_or_path: str | None) -> SuiteSpec | None:
    """A built-in suite by name, or a suite YAML file (tasks, metrics, weights, lower_is_better)."""
    import yaml
    from pydantic import ValidationError

    from hyouka.tasks.registry import SuiteSpec, builtin_suites
    from hyouka.yamlio import load_yaml

    if not name_or_path or name_or_path in ("none", "auto"):
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
