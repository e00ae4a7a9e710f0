"""Tasks graded by a judge, as ``hyouka run --tasks`` names them (``ja_mt_bench``), and their resumption."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hyouka.engine.cache import ResponseCache
from hyouka.errors import ArgumentError
from hyouka.judge.mt_bench.single import TASK_NAME, run_single
from hyouka.judge.runs import JudgeRunResult
from hyouka.models.base import Model
from hyouka.models.registry import load_model
from hyouka.pricing.table import PriceTable
from hyouka.store.store import Store

__all__ = ["JUDGE_TASKS", "JudgeTaskError", "mt_bench_data_dir", "resume_judge_run", "run_judge_task",
           "split_judge_tasks"]

JUDGE_TASKS = (TASK_NAME,)


class JudgeTaskError(ArgumentError):
    """A judge task cannot run as asked (no judge, a run that cannot be resumed…)."""


def split_judge_tasks(tasks: str | list[str]) -> tuple[list[str], list[str]]:
    """``(other tasks, judge tasks)`` from a comma-separated list or a list."""
    items = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else [t.strip() for t in tasks]
    items = [t for t in items if t]
    return [t for t in items if t not in JUDGE_TASKS], [t for t in items if t in JUDGE_TASKS]


def mt_bench_data_dir(data_dir: str | os.PathLike[str] | None, data_files: Mapping[str, Any] | None) -> Path | None:
    """The MT-Bench folder: ``data_files['ja_mt_bench']``, else ``data_dir`` when it holds (or contains) it."""
    if data_files and data_files.get(TASK_NAME):
        return Path(data_files[TASK_NAME]).expanduser()
    if data_dir:
        root = Path(data_dir).expanduser()
        for candidate in (root, root / "japanese_mt_bench", root / "japanese-mt-bench"):
            if (candidate / "question.jsonl").is_file():
                return candidate
    return None


def _beside_recorded_answers(model: Model) -> Path | None:
    """The MT-Bench folder a ``recorded:<root>/model_answer/<model>.jsonl`` file lies in, if it does."""
    path = getattr(model, "path", None)
    if isinstance(path, Path) and (path.parent.parent / "question.jsonl").is_file():
        return path.parent.parent
    return None


def run_judge_task(
    task: str,
    model: Model,
    model_spec: str,
    judge: str | Model | None,
    *,
    store: Store,
    cache: ResponseCache | None,
    data_dir: Path | None = None,
    limit: int | None = None,
    max_tokens: int | None = None,
    judge_options: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    resume: str | None = None,
    judge_spec: str | None = None,
    **options: Any,
) -> JudgeRunResult:
    """Run one judge task for ``model``; ``judge`` is a spec or a backend (``judge_spec`` names a
    backend given already built, e.g. wrapped for accounting)."""
    if judge is None:
        raise JudgeTaskError(f"task {task} is graded by a judge: give one, e.g. {{judge}}", judge="'openai:gpt-4o'")
    if data_dir is None and not os.environ.get("HYOUKA_MT_BENCH_DIR"):
        data_dir = _beside_recorded_answers(model)
    judge_backend = load_model(judge, **(judge_options or {})) if isinstance(judge, str) else judge
    if judge_spec is None:
        judge_spec = judge if isinstance(judge, str) else f"{type(judge).__name__}:{judge.name}"
    kwargs = {k: v for k, v in options.items() if v is not None}
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    return run_single(model, model_spec, judge_backend, judge_spec, store=store, cache=cache, data_dir=data_dir,
                      limit=limit, progress=progress, resume=resume, judge_options=judge_options, **kwargs)


def resume_judge_run(
    stored: dict[str, Any],
    *,
    store: Store,
    cache: ResponseCache | None,
    progress: Callable[[int, int], None] | None = None,
    prices: PriceTable | str | Path | None = None,
) -> JudgeRunResult:
    """Continue an interrupted MT-Bench run from its stored configuration."""
    config = stored["config"]
    if config.get("task") != TASK_NAME or config.get("mode") != "single":
        raise JudgeTaskError(
            f"run {stored['id']} ({stored['task']}, {stored['kind']}) cannot be resumed by id; "
            "run the same command again to continue it"
        )
    model = load_model(config["subject_model"], **(config.get("model_options") or {}))
    return run_judge_task(
        TASK_NAME, model, config["subject_model"], config["judge"], store=store, cache=cache,
        data_dir=Path(config["data_dir"]), limit=config.get("limit"), max_tokens=config.get("max_tokens"),
        judge_options=config.get("judge_options") or {}, progress=progress, resume=stored["id"], prices=prices,
        reference=config.get("reference"), turns=config.get("turns"), language=config.get("language"),
        language_rule=config.get("language_rule", True),
        judge_max_tokens=config.get("judge_max_tokens"), model_options=config.get("model_options") or {},
    )
