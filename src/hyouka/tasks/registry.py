"""Find built-in tasks and suites by name, or task files by path."""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from hyouka.tasks.catalog import BUILTIN_DIR, LM_EVAL_PREFIX, SUITES_DIR, builtin_task_names, is_task_file
from hyouka.tasks.lm_eval_yaml import load_lm_eval_task
from hyouka.tasks.spec import TaskFileError, TaskSpec, load_task_file
from hyouka.yamlio import load_yaml


class UnknownTaskError(ValueError):
    """A task or suite name that is neither built in nor a file."""


class SuiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str
    metric: str
    weight: float = 1.0
    lower_is_better: bool = False


class SuiteSpec(BaseModel):
    """A named group of tasks whose headline metrics are averaged."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    version: str
    description: str = ""
    tasks: list[SuiteEntry]


@lru_cache
def builtin_suites() -> dict[str, SuiteSpec]:
    suites: dict[str, SuiteSpec] = {}
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        try:
            suite = SuiteSpec.model_validate(load_yaml(path.read_text(encoding="utf-8")))
        except ValidationError as exc:
            raise TaskFileError(f"suite file {path} is invalid:\n{exc}") from exc
        suites[suite.suite] = suite
    return suites


def _known() -> str:
    return (
        f"built-in tasks: {', '.join(builtin_task_names())}; "
        f"suites: {', '.join(builtin_suites())}; lm-eval:NAME for a task of an installed lm_eval; "
        "or a path to a task YAML file (hyouka's or lm-eval's schema)"
    )


@cache
def _builtin_task(name: str) -> TaskSpec:
    return load_task_file(BUILTIN_DIR / f"{name}.yaml")


def load_task(name_or_path: str) -> TaskSpec:
    """A built-in task by name, ``lm-eval:NAME`` from an installed lm_eval, or a task file by path.

    A built-in task is read once per process (a leaderboard of a thousand runs asks a thousand
    times); each caller gets its own copy.
    """
    if name_or_path.startswith(LM_EVAL_PREFIX):
        return load_lm_eval_task(name_or_path)
    if (BUILTIN_DIR / f"{name_or_path}.yaml").is_file():
        return _builtin_task(name_or_path).model_copy(deep=True)
    if is_task_file(name_or_path):
        return load_task_file(Path(name_or_path))
    raise UnknownTaskError(f"unknown task {name_or_path!r}; {_known()}")


def task_source(name_or_path: str) -> str:
    """What :func:`load_task` needs to find a task again later: a built-in name, or a task file's absolute path."""
    if name_or_path.startswith(LM_EVAL_PREFIX) or (BUILTIN_DIR / f"{name_or_path}.yaml").is_file():
        return name_or_path
    return str(Path(name_or_path).expanduser().resolve())


def expand(names: str | list[str]) -> list[tuple[str, str | None]]:
    """Expand a comma-separated list of tasks and suites into ``(task, suite or None)`` pairs."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    out: list[tuple[str, str | None]] = []
    suites = builtin_suites()
    for item in filter(None, items):
        if item in suites:
            out.extend((entry.task, item) for entry in suites[item].tasks)
        else:
            load_task(item)  # raises with the list of known names
            out.append((item, None))
    seen: set[str] = set()
    unique = []
    for task, suite in out:
        if task not in seen:
            seen.add(task)
            unique.append((task, suite))
    return unique
