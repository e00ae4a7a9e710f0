"""A task bound to its data: build requests for a document and score the answers."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyouka.models.base import GenerateRequest, GenerationParams, LoglikelihoodRequest, Response
from hyouka.tasks.extract import extract_choice, extract_number, extract_text
from hyouka.tasks.loaders import DataError, DataPathError, load_split, locate
from hyouka.tasks.prompts import PromptError, PromptFamily, get_family, render
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
    """A :class:`TaskSpec` with its documents loaded and a prompt family chosen."""

    def __init__(
        self,
        spec: TaskSpec,
        *,
        data_dir: Path | None = None,
        data_file: Path | None = None,
        family: str = "plain",
        num_fewshot: int | None = None,
        seed: int = 0,
        source: str | None = None,
    ) -> None:
        self.spec = spec
        self.source = source or spec.task  # how load_task finds it again: a built-in name or a file path
        self.family: PromptFamily = get_family(family)
        check_fewshot(num_fewshot)
        self.num_fewshot = spec.num_fewshot if num_fewshot is None else num_fewshot
        self.seed = seed
        self._data_dir = data_dir
        self._data_file = data_file
        self._docs: list[dict[str, Any]] | None = None
        self._fewshot_pool: list[dict[str, Any]] | None = None
        self._shot_cache: dict[str, tuple[str, str]] = {}
        self._picks: list[int] | None = None
        self._metrics: dict[str, list[str]] = {}

    @property
    def name(self) -> str:
        return self.spec.task

    # -- data ---------------------------------------------------------------
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

    def _load(self, split: str, data_file: Path | None) -> list[dict[str, Any]]:
        try:
            return load_split(self.spec.dataset, split, data_dir=self._data_dir, data_file=data_file)
        except DataPathError as exc:
            raise DataPathError(f"task {self.source}: {exc}") from None

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

    def fewshot_for(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """The seed-fixed few-shot examples, never the document being scored.

        The same examples serve every document (one spare is drawn in case the
        document itself is among them), so prompts share their prefix.
        """
        k = self.num_fewshot
        if k <= 0:
            return []
        pool = self._pool()
        if len(pool) <= k:
            raise DataError(f"task {self.name}: {k}-shot needs more than {len(pool)} few-shot documents")
        if self._picks is None:
            self._picks = random.Random(self.seed).sample(range(len(pool)), k + 1)
        chosen = [pool[i] for i in self._picks if pool[i] is not doc and pool[i]["_id"] != doc["_id"]]
        return chosen[:k]

    # -- prompts ------------------------------------------------------------
    def _render(self, field_name: str, template: str, doc: dict[str, Any]) -> str:
        """``render`` for one of the task file's template fields, naming the file, field and document on error."""
        try:
            return render(template, doc)
        except PromptError as exc:
            raise PromptError(f"{self.source}: {field_name} for document {doc.get('_id', '?')}: {exc}") from None

    def choices(self, doc: dict[str, Any]) -> list[str]:
        templates = self.spec.doc_to_choice or []
        return [self._render(f"doc_to_choice[{i}]", template, doc) for i, template in enumerate(templates)]

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
            n = len(self.spec.doc_to_choice or [])
            try:
                index = int(raw)
            except ValueError:
                index = -1
            if not 0 <= index < n:
                raise LabelError(f"label {raw!r} is not a choice index from 0 to {n - 1}")
            return index
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
        instruction = self._render("instruction", self.spec.instruction, doc)
        return self.family.render(instruction, shots, self._render("doc_to_text", self.spec.doc_to_text, doc))

    def generation_params(self, max_tokens: int | None = None, seed: int | None = None) -> GenerationParams:
        return GenerationParams(
            max_tokens=max_tokens or self.spec.generation.max_tokens,
            temperature=0.0,
            stop=self.family.stop,
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
        if mode == "loglikelihood":
            logprobs = choice_logprobs(responses)
            details["logprobs"] = logprobs
            details["is_greedy"] = [r.is_greedy for r in responses]
            prediction: Any = None
            extracted: str | None = None
            if any(math.isfinite(lp) for lp in logprobs):
                prediction = max(range(len(logprobs)), key=logprobs.__getitem__)
                template = (self.spec.doc_to_choice or [])[prediction]
                extracted = self._render(f"doc_to_choice[{prediction}]", template, doc)
            else:
                error = "no choice has a finite log-likelihood (all NaN or missing)"
        else:
            text = responses[0].text or ""
            fmt = self.spec.generation.answer_format
            if fmt == "choice":
                extracted, prediction = extract_choice(text, self.choices(doc))
            elif fmt == "number":
                extracted, prediction = extract_number(text, self.spec.generation.number_range)
            else:
                extracted, prediction = extract_text(text, self.family.stop)
        status = "ok" if prediction is not None else "format_error"
        metrics: dict[str, float] = {}
        for name in self.metric_names(mode):
            value = sample_score(name, prediction, reference)
            if value is not None:
                metrics[name] = value
        return Scored(prediction, extracted, reference, metrics, status, error, details)
