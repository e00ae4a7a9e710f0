"""What the built-in tasks, suites and prompt families are, for the commands that only list them.

Reading a built-in task properly (:func:`hyouka.tasks.registry.load_task`) validates it with
pydantic, and the prompt families compile their Jinja templates: more time than ``hyouka tasks``
or ``hyouka leaderboard`` spend on all the rest. What those commands show (each task's version,
modes, metrics and description; each suite's entries; each family's description) is read that
proper way once and kept as a small JSON index, ``<HYOUKA_HOME>/catalog/<digest>.json``. The
digest covers every built-in file and the code that reads them (the modules of
:mod:`hyouka.tasks`) and hyouka's version: an edited task file or another hyouka reads again.
An index that cannot be written (a read-only home, or none) only means the next call reads again.

Nothing here imports pydantic, PyYAML or Jinja unless the index must be made.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent
BUILTIN_DIR = _HERE / "builtin"
SUITES_DIR = _HERE / "suites"
FAMILIES_DIR = _HERE / "families"
LM_EVAL_PREFIX = "lm-eval:"  # ``lm-eval:NAME``: a task of an installed lm_eval (hyouka.tasks.lm_eval_yaml)
_FORMAT = 1  # the index's layout; bump it when the fields below change
_KEEP = 16  # indexes kept (several checkouts or versions may share one home); the oldest go


@dataclass(frozen=True)
class TaskFacts:
    """A task as ``hyouka tasks`` lists it."""

    task: str
    version: str
    modes: tuple[str, ...]
    metrics: tuple[str, ...]  # metric_list, in order: the first is the task's headline
    description: str


@dataclass(frozen=True)
class SuiteEntryFacts:
    task: str
    metric: str
    weight: float = 1.0
    lower_is_better: bool = False


@dataclass(frozen=True)
class SuiteFacts:
    """A built-in suite as read (a :class:`hyouka.tasks.registry.SuiteSpec`'s fields, frozen)."""

    suite: str
    version: str
    description: str
    tasks: tuple[SuiteEntryFacts, ...]


@dataclass(frozen=True)
class Catalog:
    tasks: dict[str, TaskFacts]  # by name, sorted
    suites: dict[str, SuiteFacts]  # by name, in the order of their files
    families: dict[str, str]  # prompt family -> description


def builtin_task_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def is_task_file(name: str) -> bool:
    """Whether ``name`` is an existing task YAML file (what :func:`~hyouka.tasks.registry.load_task` reads by path)."""
    path = Path(name)
    return path.suffix in {".yaml", ".yml"} and path.is_file()


def task_facts(name: str) -> TaskFacts:
    """The facts of a built-in task from the index; of another task (``lm-eval:NAME``, a task file), read.

    Raises ``ValueError`` for a name that is no task (what ``load_task`` raises).
    """
    facts = builtin_catalog().tasks.get(name)
    if facts is not None:
        return facts
    if not (name.startswith(LM_EVAL_PREFIX) or is_task_file(name)):
        raise ValueError(f"unknown task {name!r}")  # load_task would refuse it: no need to import it to say so
    from hyouka.tasks.registry import load_task

    return _facts(name, load_task(name))


@cache
def builtin_catalog() -> Catalog:
    """The built-in tasks, suites and families: from the index when it is current, else read and indexed."""
    digest = _digest(_source_files())
    try:
        folder: Path | None = _index_dir()
    except OSError:  # no home to keep it in: read the files each time
        folder = None
    index = folder / f"{digest}.json" if folder is not None else None
    data = _read_index(index) if index is not None else None
    if data is None:
        data = _read_builtin()
        if folder is not None and index is not None:
            _write_index(folder, index, data)
    return _catalog(data)


def _source_files() -> list[Path]:
    data = [*BUILTIN_DIR.glob("*.yaml"), *SUITES_DIR.glob("*.yaml"), *FAMILIES_DIR.glob("*.yaml")]
    return sorted(data) + sorted(_HERE.glob("*.py"))


def _digest(files: list[Path]) -> str:
    from hyouka import __version__

    h = hashlib.sha256(f"hyouka {__version__} catalog {_FORMAT}\n".encode())
    for path in files:
        h.update(f"{path.parent.name}/{path.name}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def _index_dir() -> Path:
    from hyouka.config import home_dir

    return home_dir() / "catalog"


def _read_index(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == _FORMAT else None


def _write_index(folder: Path, path: Path, data: dict[str, Any]) -> None:
    """Write the index atomically (another process may read it meanwhile); keep the newest few."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".catalog-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)
        indexes = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in indexes[_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home: the next call reads the files again


def _facts(name: str, spec: Any) -> TaskFacts:
    return TaskFacts(name, spec.version, tuple(spec.modes), tuple(m.metric for m in spec.metric_list),
                     spec.description)


def _read_builtin() -> dict[str, Any]:
    """The one proper reading of the built-in files (pydantic, Jinja), as plain data."""
    from hyouka.tasks.prompts import PROMPT_FAMILIES
    from hyouka.tasks.registry import builtin_suites, load_task

    tasks = [vars(_facts(name, load_task(name))) for name in builtin_task_names()]
    suites = [suite.model_dump() for suite in builtin_suites().values()]
    families = {f.name: f.description for f in PROMPT_FAMILIES.values()}
    return {"format": _FORMAT, "tasks": tasks, "suites": suites, "families": families}


def _catalog(data: dict[str, Any]) -> Catalog:
    tasks = {t["task"]: TaskFacts(t["task"], t["version"], tuple(t["modes"]), tuple(t["metrics"]), t["description"])
             for t in data["tasks"]}
    suites = {s["suite"]: SuiteFacts(s["suite"], s["version"], s.get("description", ""),
                                     tuple(SuiteEntryFacts(**e) for e in s["tasks"]))
              for s in data["suites"]}
    return Catalog(tasks=tasks, suites=suites, families=dict(data["families"]))
