"""The task file schema: a YAML document validated by pydantic.

The vocabulary follows lm-evaluation-harness where it fits (``doc_to_text``,
``doc_to_choice``, ``doc_to_target``, ``output_type``, ``metric_list``,
``num_fewshot``) so users can read a task file at a glance.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hyouka.yamlio import load_yaml

Mode = Literal["loglikelihood", "generate"]
AnswerFormat = Literal["choice", "number", "text"]


class TaskFileError(ValueError):
    """A task file is missing, unreadable or invalid."""


class DatasetSpec(BaseModel):
    """Where a task's documents come from."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["jsonl", "squad"] = "jsonl"
    local_dir: str | None = Field(
        None, description="folder under the JGLUE datasets/ directory, e.g. jcommonsenseqa-v1.3"
    )
    files: dict[str, str] = Field(default_factory=dict, description="split name -> file name")
    encoding: str = Field("utf-8", description="text encoding of the data files, e.g. cp932 for Shift-JIS")
    eval_split: str = "valid"
    fewshot_split: str | None = None
    id_field: str | None = None
    required_fields: list[str] = Field(default_factory=list)
    hf_path: str | None = Field(None, description="Hugging Face dataset used when no local file is given")
    hf_name: str | None = None
    hf_splits: dict[str, str] = Field(default_factory=dict)
    source_hint: str = ""


class MetricEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    modes: list[Mode] | None = None


class GenerationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int = 32
    answer_format: AnswerFormat = "text"
    number_range: tuple[float, float] | None = None


class TaskSpec(BaseModel):
    """One evaluation task: dataset, prompt pieces, answer handling and metrics."""

    model_config = ConfigDict(extra="forbid")

    task: str
    version: str
    description: str = ""
    dataset: DatasetSpec
    output_type: Literal["multiple_choice", "generate_until"]
    modes: list[Mode]
    instruction: str
    doc_to_text: str
    doc_to_choice: list[str] | None = None
    doc_to_target: str
    choice_values: list[Any] | None = Field(
        None, description="gold label values in choice order, when the gold is not an index"
    )
    references_field: str | None = Field(
        None, description="document field holding every acceptable answer (generation tasks)"
    )
    target_delimiter: str = ""
    num_fewshot: int = 0
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    metric_list: list[MetricEntry]

    @field_validator("modes")
    @classmethod
    def _modes_not_empty(cls, modes: list[Mode]) -> list[Mode]:
        if not modes:
            raise ValueError("a task needs at least one mode")
        return modes

    @model_validator(mode="after")
    def _choices_for_multiple_choice(self) -> TaskSpec:
        if self.output_type == "multiple_choice" and not self.doc_to_choice:
            raise ValueError("multiple_choice tasks need doc_to_choice")
        if "loglikelihood" in self.modes and self.output_type != "multiple_choice":
            raise ValueError("only multiple_choice tasks can be scored by log-likelihood")
        return self

    def metrics_for(self, mode: Mode) -> list[str]:
        return [m.metric for m in self.metric_list if m.modes is None or mode in m.modes]

    def content_hash(self) -> str:
        """Hash of the validated content: any change to the task changes it."""
        # a field added later stays out of the hash at its default, so existing tasks keep theirs
        later = {"dataset": {"encoding"}} if self.dataset.encoding == "utf-8" else None
        blob = json.dumps(self.model_dump(mode="json", exclude=later), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def load_task_file(path: str | Path) -> TaskSpec:
    """Read and validate a task YAML file, naming the file in every error."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaskFileError(f"cannot read task file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"task file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "save it as UTF-8 (data files may use another encoding: dataset.encoding)") from None
    except yaml.YAMLError as exc:
        raise TaskFileError(f"task file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaskFileError(f"task file {path} must hold a mapping, got {type(data).__name__}")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskFileError(f"task file {path} is invalid:\n{exc}") from exc
