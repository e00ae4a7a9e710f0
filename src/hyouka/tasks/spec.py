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
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from hyouka.yamlio import load_yaml

Mode = Literal["loglikelihood", "generate"]
AnswerFormat = Literal["choice", "number", "text"]
Preprocess = Literal["before_blank_line", "strip_answer_label", "lowercase"]


class TaskFileError(ValueError):
    """A task file is missing, unreadable or invalid."""


class DatasetSpec(BaseModel):
    """Where a task's documents come from."""

    model_config = ConfigDict(extra="forbid")
    # set by the lm-eval importer once it has checked that absolute ``files`` lie in the task's folder;
    # a task file cannot set it, so its own absolute paths stay refused
    _files_checked: bool = PrivateAttr(default=False)

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


class LayoutSpec(BaseModel):
    """A prompt layout written in a task file: Jinja frames filled with the prompt's parts.

    Every frame may use ``description``, ``instruction``, ``target_delimiter`` and
    ``fewshot_delimiter``; ``shot`` also ``input`` and ``answer``, ``query`` also ``input``.
    The prompt is ``header + (shot + separator) * k + query``.
    """

    model_config = ConfigDict(extra="forbid")

    header: str = ""
    shot: str = "{{ input }}{{ target_delimiter }}{{ answer }}"
    separator: str = "{{ fewshot_delimiter }}"
    query: str = "{{ input }}"
    stop: list[str] = Field(default_factory=list)


Sampler = Literal["fixed", "first_n", "lm-eval", "llm-jp-eval"]


class FewshotSpec(BaseModel):
    """How few-shot examples are drawn from the few-shot split.

    - ``fixed``: hyouka's default, ``k`` examples drawn once with ``seed`` and shared by every prompt;
    - ``first_n``: the first ``k`` documents of the split (lm-eval's ``first_n``);
    - ``lm-eval``: lm-eval's default sampler, one ``random.Random(seed)`` drawing ``k`` examples for
      each document in turn (its ``fewshot_random_seed`` is 1234 unless told otherwise);
    - ``llm-jp-eval``: the first ``k`` of the split after llm-jp-eval's ``random.seed(42)`` shuffle of
      the training file (its ``train`` split), the same examples for every prompt.
    """

    model_config = ConfigDict(extra="forbid")

    sampler: Sampler = "fixed"
    seed: int | None = Field(None, description="the sampler's seed; default: the run's seed (lm-eval: 1234)")


class MetricEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    modes: list[Mode] | None = None


class GenerationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int = 32
    answer_format: AnswerFormat = "text"
    number_range: tuple[float, float] | None = None
    until: list[str] | None = Field(None, description="stop strings; default: the prompt layout's")
    preprocess: list[Preprocess] = Field(
        default_factory=list, description="steps applied to the generated text before the answer is read"
    )
    answer_regex: str | None = Field(
        None, description="take the first match of this regex (its first group if it has one), as lm-eval's filter"
    )
    regex_select: int = Field(0, description="which match of answer_regex to take (lm-eval's group_select)")
    regex_fallback: str | None = Field(None, description="the answer when the regex finds nothing (else none)")


class TaskSpec(BaseModel):
    """One evaluation task: dataset, prompt pieces, answer handling and metrics."""

    model_config = ConfigDict(extra="forbid")

    task: str
    version: str
    description: str = ""
    dataset: DatasetSpec
    output_type: Literal["multiple_choice", "generate_until"]
    modes: list[Mode]
    instruction: str = ""
    doc_to_text: str
    doc_to_choice: list[str] | str | None = Field(
        None, description="choice templates, or one template/field giving the document's list of choices"
    )
    doc_to_target: str
    choice_values: list[Any] | None = Field(
        None, description="gold label values in choice order, when the gold is not an index"
    )
    references_field: str | None = Field(
        None, description="document field holding every acceptable answer (generation tasks)"
    )
    target_delimiter: str = ""
    fewshot_delimiter: str = "\n\n"
    num_fewshot: int = 0
    fewshot: FewshotSpec = Field(default_factory=FewshotSpec)
    layout: str | LayoutSpec | None = Field(
        None, description="the task's own prompt layout: a family name or frames; default: the run's family"
    )
    process_docs: str | None = Field(
        None,
        description="module.function in the task file's folder that rewrites the documents (Python the user runs)",
    )
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

    @property
    def fixed_choices(self) -> list[str] | None:
        """The choice templates when every document has the same number of them, else ``None``."""
        return self.doc_to_choice if isinstance(self.doc_to_choice, list) else None

    def metrics_for(self, mode: Mode) -> list[str]:
        return [m.metric for m in self.metric_list if m.modes is None or mode in m.modes]

    def content_hash(self) -> str:
        """Hash of the validated content (and of the ``process_docs`` code): any change to the task changes it."""
        content = self.model_dump(mode="json")
        # fields added after the first schema leave the hash alone at their defaults, so a task file
        # written before them keeps its hash (and its runs stay comparable)
        for name, default in _LATER_FIELDS.items():
            if content.get(name) == default:
                content.pop(name)
        for name, default in _LATER_GENERATION_FIELDS.items():
            if content["generation"].get(name) == default:
                content["generation"].pop(name)
        if content["dataset"].get("encoding") == "utf-8":
            content["dataset"].pop("encoding")
        if self.process_docs is not None:
            from hyouka.tasks.process_docs import code_digest

            content["process_docs_code"] = code_digest(self.process_docs)
        blob = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


_LATER_FIELDS: dict[str, Any] = {
    "fewshot_delimiter": "\n\n",
    "fewshot": FewshotSpec().model_dump(mode="json"),
    "layout": None,
    "process_docs": None,
}
_LATER_GENERATION_FIELDS: dict[str, Any] = {
    "until": None, "preprocess": [], "answer_regex": None, "regex_select": 0, "regex_fallback": None,
}


def load_task_file(path: str | Path) -> TaskSpec:
    """Read and validate a task YAML file, naming the file in every error."""
    from hyouka.tasks.lm_eval_yaml import is_lm_eval_schema, load_lm_eval_yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if "!function" in text:  # lm-eval's tag for Python in a task file: only its schema has it
            return load_lm_eval_yaml(path)
        data = load_yaml(text)
    except OSError as exc:
        raise TaskFileError(f"cannot read task file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"task file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "save it as UTF-8 (data files may use another encoding: dataset.encoding)") from None
    except yaml.YAMLError as exc:
        raise TaskFileError(f"task file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaskFileError(f"task file {path} must hold a mapping, got {type(data).__name__}")
    if is_lm_eval_schema(data):
        return load_lm_eval_yaml(path)
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskFileError(f"task file {path} is invalid:\n{exc}") from exc
    if spec.process_docs is not None:
        from hyouka.tasks.process_docs import resolve_reference

        spec = spec.model_copy(update={"process_docs": resolve_reference(spec.process_docs, path.parent, path)})
    return spec
