"""A job: a frozen, content-hashed manifest of one evaluation, and what an agent needs to run it.

:class:`JobSpec` holds everything that decides a job's numbers: the model spec and its options, the
tasks, the settings of :func:`hyouka.run`, the judge, the price table (the file's entries, frozen at
submission) and the hyouka version. Its :meth:`~JobSpec.content_hash` identifies it: the same spec
submitted twice is one job. Secrets are refused (:mod:`hyouka.jobs.secrets`); an agent reads them
from its own environment. Where a job may run (its queue, priority and the GPUs and CPUs it needs)
is scheduling, kept beside the spec in :class:`Placement`, outside the hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hyouka.jobs.secrets import check_no_secrets

__all__ = ["JobSpec", "JobSpecError", "Placement", "frozen_prices", "make_spec"]

Mode = Literal["auto", "loglikelihood", "generate"]
LOCAL_BACKENDS = ("hf", "vllm")  # backends that hold the weights on the agent's machine


class JobSpecError(ValueError):
    """A job spec (from options or jobs.yaml) is invalid; the message names the field."""


class JobSpec(BaseModel):
    """What to evaluate, frozen: the arguments of :func:`hyouka.run` that can change a result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    model_options: dict[str, Any] = Field(default_factory=dict)
    tasks: tuple[str, ...]
    mode: Mode = "auto"
    num_fewshot: int | None = Field(default=None, ge=0)
    prompt_family: str | None = None
    seed: int = 0
    limit: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    chat: bool = False
    data_dir: str | None = None  # None: the agent's own (HYOUKA_JGLUE_DIR)
    data_files: dict[str, str] = Field(default_factory=dict)
    max_cost: float | None = Field(default=None, ge=0)
    cache: bool = True  # False: every call is made again (answers already stored in the run still count)
    judge: str | None = None
    judge_options: dict[str, Any] = Field(default_factory=dict)
    judge_max_tokens: int | None = Field(default=None, ge=1)
    prices: dict[str, Any] | None = None  # a price file's entries, frozen when submitted
    hyouka_version: str = ""

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",")]
        if isinstance(value, (list, tuple)):
            value = tuple(t for t in value if t)
            if not value:
                raise ValueError("a job needs at least one task")
        return value

    def manifest(self) -> dict[str, Any]:
        """The spec as plain JSON data (what the store keeps and the hash covers)."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`manifest`."""
        text = json.dumps(self.manifest(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def backend(self) -> str:
        return self.model.partition(":")[0]

    def run_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`hyouka.run` for this spec (less store, cache, prices and progress)."""
        return {
            "mode": self.mode, "num_fewshot": self.num_fewshot, "prompt_family": self.prompt_family,
            "seed": self.seed, "limit": self.limit, "data_dir": self.data_dir,
            "data_files": dict(self.data_files) or None, "max_tokens": self.max_tokens, "chat": self.chat,
            "max_cost": self.max_cost, "judge": self.judge, "judge_options": dict(self.judge_options) or None,
            "judge_max_tokens": self.judge_max_tokens, **self.model_options,
        }

    def price_table(self) -> Any:
        """The price table the job was submitted with: its frozen entries before the agent's defaults."""
        from hyouka.pricing.table import Price, default_prices

        table = default_prices()
        if not self.prices:
            return table
        entries = {k: Price.model_validate(v) for k, v in (self.prices.get("models") or {}).items()}
        table.layers.insert(0, ("job spec prices", str(self.prices.get("version") or ""), entries))
        return table


class Placement(BaseModel):
    """Where a job may run: its queue, priority, and the resources it takes (not part of its hash)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    priority: int = 0
    num_gpus: float = Field(default=0.0, ge=0)
    num_cpus: float = Field(default=1.0, ge=0)


def default_gpus(spec: JobSpec, queue: str) -> float:
    """GPUs a job takes unless told: on a GPU queue (its name says ``gpu``) a local-weights model takes
    one per tensor-parallel rank; endpoint models and CPU queues take none."""
    if spec.backend not in LOCAL_BACKENDS or "gpu" not in queue.lower():
        return 0.0
    return float(spec.model_options.get("tensor_parallel_size") or 1)


def frozen_prices(path: str | Path | None) -> dict[str, Any] | None:
    """A price file's content, validated, to freeze in a spec (``None`` without a file)."""
    if path is None:
        return None
    from hyouka.pricing.table import _read

    _, version, entries = _read(Path(path).expanduser())
    return {"version": version, "models": {k: v.model_dump(exclude_none=True) for k, v in entries.items()}}


def _check_names(spec: JobSpec) -> None:
    """Model backend, tasks, prompt family: refused at submission, before any agent sees the job."""
    from hyouka.judge.tasks import split_judge_tasks
    from hyouka.models.registry import parse_spec
    from hyouka.tasks.prompts import get_family
    from hyouka.tasks.registry import expand

    parse_spec(spec.model)
    tasks, judge_tasks = split_judge_tasks(list(spec.tasks))
    if tasks:
        expand(tasks)
    if judge_tasks and spec.judge is None:
        raise JobSpecError(f"job spec: {', '.join(judge_tasks)} is graded by a judge; give one (--judge)")
    if spec.judge is not None:
        parse_spec(spec.judge)
    if spec.prompt_family is not None:
        get_family(spec.prompt_family)


def make_spec(check: bool = True, **fields: Any) -> JobSpec:
    """A :class:`JobSpec` from its fields (``None`` values take the defaults), secrets refused.

    ``check`` also refuses unknown backends, tasks and prompt families now rather than on an agent.
    """
    import hyouka

    values = {k: v for k, v in fields.items() if v is not None}
    for key in ("model_options", "judge_options"):
        values[key] = {k: v for k, v in (values.get(key) or {}).items() if v is not None}
    values.setdefault("hyouka_version", hyouka.__version__)
    check_no_secrets({k: v for k, v in values.items() if k != "prices"}, "spec")
    try:
        spec = JobSpec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise JobSpecError(f"job spec: {problems}") from None
    if check:
        _check_names(spec)
    return spec
