"""``jobs.yaml``: many jobs as a grid of models × tasks × settings.

::

    queue: gpu                 # where the jobs go (default: default)
    priority: 5
    models:
      - hf:rinna/japanese-gpt-neox-3.6b
      - model: openai:my-model
        options: {base_url: http://127.0.0.1:8000/v1, api_key_env: MY_KEY, concurrency: 8}
    tasks: [jglue, jsquad]     # one job per entry ("jcommonsenseqa,jnli" is one job of two tasks)
    settings:                  # a list is one job per value; the others apply to every job
      num_fewshot: [0, 3]
      mode: generate
    judge: openai:gpt-4o       # optional, with judge_options
    prices: prices.yaml        # optional, beside this file; frozen into each spec

Every job is a :class:`~hyouka.jobs.spec.JobSpec`, checked (secrets refused) before any is queued.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hyouka.jobs.spec import JobSpec, JobSpecError, Placement, frozen_prices, make_spec
from hyouka.yamlio import load_yaml

_SETTINGS = ("mode", "num_fewshot", "prompt_family", "seed", "limit", "max_tokens", "chat", "data_dir",
             "data_files", "max_cost", "cache", "judge_max_tokens")
_NOT_EXPANDED = ("data_files",)  # values that are mappings, never a list of alternatives


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    options: dict[str, Any] = Field(default_factory=dict)


class _Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str = "default"
    priority: int = 0
    gpus: float | None = Field(default=None, ge=0)
    cpus: float = Field(default=1.0, ge=0)
    models: list[str | _Model] = Field(min_length=1)
    tasks: list[str | list[str]] = Field(min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)
    judge: str | None = None
    judge_options: dict[str, Any] = Field(default_factory=dict)
    prices: str | None = None


def _combinations(settings: dict[str, Any], where: str) -> list[dict[str, Any]]:
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise JobSpecError(f"{where}: settings.{unknown[0]} is not a job setting; settings: {', '.join(_SETTINGS)}")
    keys = list(settings)
    axes = [v if isinstance(v, list) and k not in _NOT_EXPANDED else [v] for k, v in settings.items()]
    if any(not axis for axis in axes):
        raise JobSpecError(f"{where}: a setting lists no values")
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes)]


def load_grid(path: str | Path) -> list[tuple[JobSpec, Placement]]:
    """Every job of ``jobs.yaml`` with its placement, in file order (models, then tasks, then settings)."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise JobSpecError(f"cannot read {path}: {exc}") from exc
    try:
        grid = _Grid.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise JobSpecError(f"{path}: {problems}") from None
    prices = frozen_prices(path.parent / grid.prices) if grid.prices else None
    combos = _combinations(grid.settings, str(path))
    out = []
    for entry, tasks, settings in itertools.product(grid.models, grid.tasks, combos):
        model = entry if isinstance(entry, _Model) else _Model(model=entry)
        try:
            spec = make_spec(model=model.model, model_options=model.options, tasks=tasks, judge=grid.judge,
                             judge_options=grid.judge_options, prices=prices, **settings)
        except ValueError as exc:
            raise JobSpecError(f"{path}: {model.model} × {tasks}: {exc}") from exc
        fields: dict[str, Any] = {"queue": grid.queue, "priority": grid.priority, "num_cpus": grid.cpus}
        if grid.gpus is not None:
            fields["num_gpus"] = grid.gpus
        try:
            placement = Placement(**fields)
        except ValidationError as exc:
            raise JobSpecError(f"{path}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
        out.append((spec, placement))
    return out
