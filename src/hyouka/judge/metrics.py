"""Judge metrics: a rubric graded by a judge, one row at a time, 1-5 with a justification.

Built in (each in Japanese and English): ``answer_correctness`` (question, answer, ground
truth), ``answer_similarity`` (answer, ground truth), ``answer_relevance`` (question,
answer), ``relevance`` (question, context, answer) and ``faithfulness`` (context, answer); for
retrieval, ``context_relevance`` (question, context: how much of the context bears on the
question) and ``context_recall`` (context, ground truth: how much of the ground truth it states).
A rubric file of one's own makes a custom metric. As in MLflow, a metric may carry its own
judge (``answer_correctness(judge="openai:gpt-4o")``); otherwise the evaluation's judge grades it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyouka.judge.grading import JudgeCall
from hyouka.judge.parse import parse_score
from hyouka.judge.prompts import grading_messages, repair_text
from hyouka.judge.rubric import Rubric, builtin_rubric_names, load_rubric
from hyouka.tasks.prompts import PromptError

__all__ = [
    "BUILTIN_JUDGE_METRICS",
    "JudgeMetric",
    "MissingInputError",
    "answer_correctness",
    "answer_relevance",
    "answer_similarity",
    "faithfulness",
    "is_judge_metric",
    "judge_metric",
    "relevance",
]

BUILTIN_JUDGE_METRICS = ("answer_correctness", "answer_similarity", "answer_relevance", "relevance", "faithfulness",
                         "context_relevance", "context_recall")


class MissingInputError(ValueError):
    """A row lacks a field the rubric shows the judge."""


def score_schema(scale: tuple[int, int]) -> str:
    """An OpenAI ``response_format`` asking for ``{"justification": str, "score": int}`` on ``scale``."""
    lo, hi = scale
    schema = {
        "type": "object",
        "properties": {
            "justification": {"type": "string"},
            "score": {"type": "integer", "minimum": lo, "maximum": hi},
        },
        "required": ["justification", "score"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "judgment", "strict": True, "schema": schema}}
    return json.dumps(response_format, sort_keys=True)


@dataclass(frozen=True)
class JudgeMetric:
    """A rubric to grade by, and optionally the judge (a model spec or backend) that grades it."""

    name: str
    rubric: Rubric
    judge: Any = None

    def call(self, fields: Mapping[str, str | None], tags: Mapping[str, Any] | None = None) -> JudgeCall:
        """The judge call for one row; ``MissingInputError`` when a field besides the answer is empty."""
        missing = [f for f in self.rubric.needs if not (fields.get(f) or "").strip()]
        if missing:
            raise MissingInputError(f"{self.name} needs {', '.join(missing)}, which this row lacks")
        rubric = self.rubric
        try:
            messages = grading_messages(rubric, {k: v or "" for k, v in fields.items()})
        except PromptError as exc:
            row = (tags or {}).get("row")
            raise PromptError(f"{exc} (row {row})" if row is not None else str(exc)) from None
        return JudgeCall(
            messages=messages,
            parse=lambda text: parse_score(text, rubric.scale),
            repair=lambda error: repair_text(rubric, error),
            tags={"metric": self.name, **(tags or {})},
            response_format=score_schema(rubric.scale),
        )

    def describe(self) -> dict[str, Any]:
        judge = self.judge if self.judge is None or isinstance(self.judge, str) else getattr(self.judge, "name", "?")
        return {**self.rubric.describe(), "metric": self.name, "judge": judge}


def is_judge_metric(spec: Any) -> bool:
    """Whether a metric spec names a judge metric (built-in name, rubric file, or object)."""
    if isinstance(spec, (JudgeMetric, Rubric)):
        return True
    text = str(spec)
    return text in builtin_rubric_names() or text.endswith((".yaml", ".yml"))


def judge_metric(spec: str | Path | Rubric | JudgeMetric, language: str = "ja", judge: Any = None) -> JudgeMetric:
    """A judge metric from a built-in name, a rubric file path, or a :class:`Rubric`."""
    if isinstance(spec, JudgeMetric):
        return spec
    rubric = spec if isinstance(spec, Rubric) else load_rubric(spec, language)
    return JudgeMetric(rubric.name, rubric, judge)


def answer_correctness(judge: Any = None, language: str = "ja") -> JudgeMetric:
    """Is the answer factually correct, against the ground truth? (question, answer, ground truth)"""
    return judge_metric("answer_correctness", language, judge)


def answer_similarity(judge: Any = None, language: str = "ja") -> JudgeMetric:
    """Does the answer mean what the ground truth means? (answer, ground truth)"""
    return judge_metric("answer_similarity", language, judge)


def answer_relevance(judge: Any = None, language: str = "ja") -> JudgeMetric:
    """Does the answer address the question? (question, answer)"""
    return judge_metric("answer_relevance", language, judge)


def relevance(judge: Any = None, language: str = "ja") -> JudgeMetric:
    """Does the answer address the question, given the context? (question, context, answer)"""
    return judge_metric("relevance", language, judge)


def faithfulness(judge: Any = None, language: str = "ja") -> JudgeMetric:
    """Is every claim of the answer supported by the context? (context, answer)"""
    return judge_metric("faithfulness", language, judge)
