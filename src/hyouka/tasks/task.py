"""A task bound to its data: build requests for a document and score the answers."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyouka.metrics.llmjp import is_llmjp
from hyouka.models.base import GenerateRequest, GenerationParams, LoglikelihoodRequest, Response
from hyouka.tasks import process_docs
from hyouka.tasks.answers import preprocess_answer, regex_answer
from hyouka.tasks.extract import extract_choice, extract_number, extract_text
from hyouka.tasks.fewshot import FewshotSampler, make_sampler
from hyouka.tasks.loaders import DataError, DataPathError, load_split, locate
from hyouka.tasks.prompts import PromptError, PromptFamily, get_family, layout_family, render
from hyouka.tasks.spec import Mode, TaskSpec


def choice_logprobs(responses: Sequence[Response]) -> list[float]:
    """Each choice's log-likelihood, a NaN or missing one as ``-inf`` (the least likely).

    The live run (a backend's NaN) and ``hyouka score`` (the store keeps NaN as null) read
    the same numbers through here, so they pick the same choice: the most likely, ties to the first.
    """
    return [-math.inf if r.logprob is None or math.isnan(r.logprob) else float(r.logprob) for r in responses]


@dataclass
class Scored:
    """The outcome of one sample: what was predicted, against what, and how it scored."""

    prediction: Any
    extracted: str | None
    reference: Any
    metrics: dict[str, float]
    status: str  # ok | format_error | api_error | timeout
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def check_fewshot(num_fewshot: int | None) -> None:
    """Refuse a negative number of few-shot examples (it would silently run zero-shot)."""
    if num_fewshot is not None and num_fewshot < 0:
        raise ValueError(f"--num-fewshot must be 0 or more, got {num_fewshot}")


class LabelError(DataError):
    """A document's gold label is outside the task's label set."""


class Task:
    """A :class:`TaskSpec` with its documents loaded and a prompt family chosen.

    ``family=None`` lays the prompt out as the task file says (its ``layout``), else ``plain``.
    A family with its own wording of this task (``llm-jp-eval``) replaces the task's prompt
    fields with it.
    """

    def __init__(
        self,
        spec: TaskSpec,
        *,
        data_dir: Path | None = None,
        data_file: Path | None = None,
        family: str | None = None,
        num_fewshot: int | None = None,
        seed: int = 0,
        source: str | None = None,
    ) -> None:
        self.source = source or spec.task  # how load_task finds it again: a built-in name or a file path
        check_fewshot(num_fewshot)
        if family is None and spec.layout is not None:
            self.family: PromptFamily = layout_family(spec.task, spec.layout)
        else:
            self.family = get_family(family or "plain")
            spec = _with_variant(spec, self.family)
        # what a run records to build this task again: None when the task's own layout is used
        self.family_choice: str | None = None if family is None and spec.layout is not None else self.family.name
        self.spec = spec
        self.num_fewshot = spec.num_fewshot if num_fewshot is None else num_fewshot
        self.seed = seed
        self._data_dir = data_dir
        self._data_file = data_file
        self._docs: list[dict[str, Any]] | None = None
        self._positions: dict[str, int] | None = None
        self._fewshot_pool: list[dict[str, Any]] | None = None
        self._sampler: FewshotSampler | None = None
        self._shot_cache: dict[str, tuple[str, str]] = {}
        self._metrics: dict[str, list[str]] = {}

    @property
    def name(self) -> str:
        return self.spec.task

    # -- data ---------------------------------------------------------------
    def _load(self, split: str, data_file: Path | None) -> list[dict[str, Any]]:
        try:
            docs = load_split(self.spec.dataset, split, data_dir=self._data_dir, data_file=data_file)
        except DataPathError as exc:
            raise DataPathError(f"task {self.source}: {exc}") from None
        if self.spec.process_docs is not None:
            docs = process_docs.apply(self.spec.process_docs, docs)
        return docs

    def docs(self) -> list[dict[str, Any]]:
        """The evaluation split's documents, refused at load if a gold label is outside the task's labels."""
        if self._docs is None:
            split = self.spec.dataset.eval_split
            docs = self._load(split, self._data_file)
            if not docs:
                raise DataError(f"task {self.name}: the {split} split has no documents")
            self._check_labels(docs, split, self._data_file)
            self._docs = docs
        return self._docs

    def _pool(self) -> list[dict[str, Any]]:
        if self._fewshot_pool is None:
            split = self.spec.dataset.fewshot_split
            if split is None or split == self.spec.dataset.eval_split:
                self._fewshot_pool = self.docs()
            else:
                pool = self._load(split, None)
                self._check_labels(pool, split, None)
                self._fewshot_pool = pool
        return self._fewshot_pool

    def _check_labels(self, docs: list[dict[str, Any]], split: str, data_file: Path | None) -> None:
        """Refuse a gold label outside the task's label set (a choice index, a value, a number in range),
        naming its file and line, before any model is called."""
        if self.spec.output_type != "multiple_choice" and self.spec.generation.answer_format != "number":
            return  # free-text answers: any text is a reference
        for index, doc in enumerate(docs):
            try:
                self.gold(doc)
            except LabelError as exc:
                where = locate(self.spec.dataset, split, index, data_dir=self._data_dir, data_file=data_file)
                raise LabelError(f"{where}: {exc} (task {self.name}, document {doc['_id']})") from None

    def _position(self, doc: dict[str, Any]) -> int:
        if self._positions is None:
            self._positions = {d["_id"]: i for i, d in enumerate(self.docs())}
        return self._positions.get(doc["_id"], 0)

    def fewshot_for(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """The few-shot examples of ``doc`` as the task's sampler draws them, never the document itself.

        The default (``fixed``) sampler gives every document the same seed-fixed examples, so
        prompts share their prefix.
        """
        if self.num_fewshot <= 0:
            return []
        if self._sampler is None:
            pool = self._pool()
            fewshot = self.spec.fewshot
            self._sampler = make_sampler(
                fewshot.sampler,
                pool,
                self.num_fewshot,
                pool_is_eval=pool is self.docs(),
                seed=self.seed if fewshot.seed is None else fewshot.seed,
                task=self.name,
            )
        return self._sampler.sample(doc, self._position(doc))

    # -- prompts ------------------------------------------------------------
    def _render(self, field_name: str, template: str, doc: dict[str, Any]) -> str:
        """``render`` for one of the task file's template fields, naming the file, field and document on error."""
        try:
            return render(template, doc)
        except PromptError as exc:
            raise PromptError(f"{self.source}: {field_name} for document {doc.get('_id', '?')}: {exc}") from None

    def choices(self, doc: dict[str, Any]) -> list[str]:
        source = self.spec.doc_to_choice
        if source is None:
            return []
        if isinstance(source, list):
            return [self._render(f"doc_to_choice[{i}]", template, doc) for i, template in enumerate(source)]
        return _choice_list(self.name, source, doc)

    def gold(self, doc: dict[str, Any]) -> Any:
        """The gold answer: a choice index, a number, or a list of acceptable texts (:class:`LabelError` if
        the label is outside the task's label set)."""
        raw = self._render("doc_to_target", self.spec.doc_to_target, doc)
        if self.spec.output_type == "multiple_choice":
            if self.spec.choice_values is not None:
                values = [str(v) for v in self.spec.choice_values]
                if raw not in values:
                    raise LabelError(f"label {raw!r} is not one of {values}")
                return values.index(raw)
            choices = self.choices(doc)
            n = len(choices)
            if raw.strip().lstrip("-").isdigit():
                index = int(raw)
                if not 0 <= index < n:
                    raise LabelError(f"label {raw!r} is not a choice index from 0 to {n - 1}")
                return index
            if raw not in choices:  # lm-eval: a target that is no index names the choice
                raise LabelError(f"label {raw!r} is neither a choice index from 0 to {n - 1} nor one of the choices")
            return choices.index(raw)
        if self.spec.generation.answer_format == "number":
            try:
                value = float(raw)
            except ValueError:
                raise LabelError(f"label {raw!r} is not a number") from None
            if not math.isfinite(value):
                raise LabelError(f"label {raw!r} is not a finite number")
            bounds = self.spec.generation.number_range
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise LabelError(f"label {raw!r} is outside the task's range {bounds[0]:g} to {bounds[1]:g}")
            return value
        refs = doc.get(self.spec.references_field) if self.spec.references_field else None
        return list(refs) if refs else [raw]

    def target_text(self, doc: dict[str, Any]) -> str:
        """The answer as written in a few-shot example."""
        if self.spec.output_type == "multiple_choice":
            return self.choices(doc)[self.gold(doc)]
        return self._render("doc_to_target", self.spec.doc_to_target, doc)

    def _shot(self, doc: dict[str, Any]) -> tuple[str, str]:
        """A few-shot example's input and answer text (the same examples recur in every prompt)."""
        cached = self._shot_cache.get(doc["_id"])
        if cached is None:
            text = self._render("doc_to_text", self.spec.doc_to_text, doc)
            cached = self._shot_cache[doc["_id"]] = (text, self.target_text(doc))
        return cached

    def prompt(self, doc: dict[str, Any]) -> str:
        shots = tuple(self._shot(d) for d in self.fewshot_for(doc))
        return self.family.render(
            self._render("instruction", self.spec.instruction, doc),
            shots,
            self._render("doc_to_text", self.spec.doc_to_text, doc),
            description=self._render("description", self.spec.description, doc),
            target_delimiter=self.spec.target_delimiter,
            fewshot_delimiter=self.spec.fewshot_delimiter,
        )

    def stop(self) -> tuple[str, ...]:
        """Stop strings: the task's ``until``, else the layout's, else the few-shot delimiter (as lm-eval)."""
        until = self.spec.generation.until
        if until is not None:
            return tuple(until)
        return self.family.stop or (self.spec.fewshot_delimiter,)

    def generation_params(self, max_tokens: int | None = None, seed: int | None = None) -> GenerationParams:
        return GenerationParams(
            max_tokens=max_tokens or self.spec.generation.max_tokens,
            temperature=0.0,
            stop=self.stop(),
            seed=seed,
        )

    def requests(
        self, doc: dict[str, Any], mode: Mode, params: GenerationParams | None = None, prompt: str | None = None
    ) -> list[LoglikelihoodRequest | GenerateRequest]:
        """The model requests one document needs in a mode (``prompt`` if already built)."""
        prompt = self.prompt(doc) if prompt is None else prompt
        if mode == "loglikelihood":
            delimiter = self.spec.target_delimiter
            return [LoglikelihoodRequest(prompt, delimiter + choice) for choice in self.choices(doc)]
        return [GenerateRequest(prompt, params or self.generation_params())]

    # -- scoring ------------------------------------------------------------
    def metric_names(self, mode: Mode) -> list[str]:
        """The task's metrics in ``mode`` (looked up once per mode)."""
        names = self._metrics.get(mode)
        if names is None:
            names = self._metrics[mode] = self.spec.metrics_for(mode)
        return names

    def scores_texts(self, mode: Mode) -> bool:
        """Whether a metric of ``mode`` compares the raw output with the gold text (the ``llmjp:`` ones)."""
        return any(is_llmjp(name) for name in self.metric_names(mode))

    def metric_inputs(self, metric: str, sample: dict[str, Any]) -> tuple[Any, Any]:
        """What ``metric`` compares for a stored sample: the texts for ``llmjp:`` metrics, else prediction and gold."""
        if is_llmjp(metric):  # the output after the task's answer pre-processing (Nejumi's label stripping)
            text = sample.get("output")
            if text is None:
                text = sample.get("extracted") or ""
            else:
                text = preprocess_answer(text, self.spec.generation.preprocess)
            return text, self.target_text(sample["doc"])
        return sample["prediction"], sample["reference"]

    def _read_answer(self, text: str, doc: dict[str, Any]) -> tuple[str | None, Any]:
        """The extracted text and the prediction from generated ``text``."""
        gen = self.spec.generation
        text = preprocess_answer(text, gen.preprocess)
        if gen.answer_regex is not None:
            found = regex_answer(text, gen.answer_regex, gen.regex_select, gen.regex_fallback)
            if found is None:
                return None, None
            if gen.answer_format == "text":
                return found, found
            text = found
        if gen.answer_format == "choice":
            return extract_choice(text, self.choices(doc))
        if gen.answer_format == "number":
            return extract_number(text, gen.number_range)
        return extract_text(text, self.stop())

    def score(self, doc: dict[str, Any], mode: Mode, responses: Sequence[Response]) -> Scored:
        """Turn a document's responses into a prediction and per-sample metrics."""
        from hyouka.metrics.registry import sample_score

        reference = self.gold(doc)
        failed = [r for r in responses if not r.ok]
        if failed:
            first = failed[0]
            return Scored(None, None, reference, {}, first.error_type or "api_error", first.error)

        details: dict[str, Any] = {}
        error: str | None = None
        output: str | None = None
        if mode == "loglikelihood":
            logprobs = choice_logprobs(responses)
            details["logprobs"] = logprobs
            details["is_greedy"] = [r.is_greedy for r in responses]
            prediction: Any = None
            extracted: str | None = None
            if any(math.isfinite(lp) for lp in logprobs):
                prediction = max(range(len(logprobs)), key=logprobs.__getitem__)
                extracted = self.choices(doc)[prediction]
            else:
                error = "no choice has a finite log-likelihood (all NaN or missing)"
        else:
            output = responses[0].text or ""
            extracted, prediction = self._read_answer(output, doc)
        status = "ok" if prediction is not None else "format_error"
        metrics: dict[str, float] = {}
        sample = {"output": output, "extracted": extracted, "doc": doc, "prediction": prediction,
                  "reference": reference}
        for name in self.metric_names(mode):
            value = sample_score(name, *self.metric_inputs(name, sample))
            if value is not None:
                metrics[name] = value
        return Scored(prediction, extracted, reference, metrics, status, error, details)


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _choice_list(task: str, source: str, doc: dict[str, Any]) -> list[str]:
    """A document's choices from one field name or a template rendering a Python list (lm-eval)."""
    if _FIELD_NAME.match(source.strip()):
        value: Any = doc.get(source.strip())
        if value is None:
            raise DataError(f"task {task}, doc {doc['_id']}: doc_to_choice field {source!r} is missing")
    else:
        rendered = render(source, doc)
        try:
            value = ast.literal_eval(rendered)
        except (ValueError, SyntaxError) as exc:
            raise DataError(f"task {task}, doc {doc['_id']}: doc_to_choice rendered {rendered!r}, not a list") from exc
    if not isinstance(value, list | tuple):
        raise DataError(f"task {task}, doc {doc['_id']}: doc_to_choice gave {type(value).__name__}, not a list")
    return [str(v) for v in value]


_VARIANT_FIELDS = (
    "instruction", "doc_to_text", "doc_to_choice", "choice_values", "doc_to_target", "target_delimiter",
    "fewshot_delimiter", "fewshot", "generation", "metric_list",
)


def _with_variant(spec: TaskSpec, family: PromptFamily) -> TaskSpec:
    """``spec`` with the family's own wording of the task, when the family has variants."""
    if not family.variants:
        return spec
    variant = family.variants.get(spec.task)
    if variant is None:
        raise PromptError(
            f"prompt family {family.name} has no prompt for task {spec.task}; "
            f"it has: {', '.join(family.variants)}"
        )
    unknown = set(variant) - set(_VARIANT_FIELDS)
    if unknown:
        raise PromptError(f"prompt family {family.name}, task {spec.task}: unknown fields {sorted(unknown)}")
    data = spec.model_dump()
    data.update(variant)
    return TaskSpec.model_validate(data)
