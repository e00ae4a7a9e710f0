"""MT-Bench judge prompts filled in for one question and turn, as FastChat builds them.

Turn 1 uses ``single-v1`` (or ``single-math-v1`` with the reference answer for math,
reasoning and coding); turn 2 shows the whole two-turn conversation (``…-multi-turn``).
Pairwise prompts (``pair-v2``, ``pair-math-v1`` and their multi-turn forms) show two
assistants' answers as A and B. ``language_rule`` (default) adds the Japanese fork's later
sentence asking to deduct points for an answer not in the user's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hyouka.judge.grading import JudgeCall
from hyouka.judge.mt_bench.data import NEED_REF_CATEGORIES, Question
from hyouka.judge.parse import BRACKETS_FIRST, parse_score, parse_verdict
from hyouka.judge.prompts import mt_bench_prompt
from hyouka.models.base import Message

__all__ = ["SCALE", "pair_prompt", "rating_call", "single_prompt", "verdict_call"]

SCALE = (1, 10)


def _needs_reference(question: Question, references: Sequence[str] | None) -> bool:
    return question.category in NEED_REF_CATEGORIES and bool(references)


def _messages(name: str, language: str, language_rule: bool, **values: str) -> tuple[Message, ...]:
    prompt = mt_bench_prompt(name, language, language_rule)
    return (Message("system", prompt["system_prompt"]), Message("user", prompt["prompt_template"].format(**values)))


def single_prompt(
    question: Question,
    turn: int,
    answers: Sequence[str],
    references: Sequence[str] | None = None,
    language: str = "ja",
    language_rule: bool = True,
) -> tuple[str, tuple[Message, ...]]:
    """The prompt's name and messages grading ``answers`` (one per turn so far) at ``turn``."""
    ref = _needs_reference(question, references)
    if turn == 1:
        name = "single-math-v1" if ref else "single-v1"
        values = {"question": question.turns[0], "answer": answers[0]}
        if ref:
            values["ref_answer_1"] = references[0]  # type: ignore[index]
    else:
        name = "single-math-v1-multi-turn" if ref else "single-v1-multi-turn"
        values = {"question_1": question.turns[0], "question_2": question.turns[1],
                  "answer_1": answers[0], "answer_2": answers[1]}
        if ref:
            values.update(ref_answer_1=references[0], ref_answer_2=references[1])  # type: ignore[index]
    return name, _messages(name, language, language_rule, **values)


def pair_prompt(
    question: Question,
    turn: int,
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    references: Sequence[str] | None = None,
    language: str = "ja",
    language_rule: bool = True,
) -> tuple[str, tuple[Message, ...]]:
    """The prompt's name and messages comparing assistant A's and B's answers at ``turn``."""
    ref = _needs_reference(question, references)
    if turn == 1:
        name = "pair-math-v1" if ref else "pair-v2"
        values = {"question": question.turns[0], "answer_a": answers_a[0], "answer_b": answers_b[0]}
        if ref:
            values["ref_answer_1"] = references[0]  # type: ignore[index]
    else:
        name = "pair-math-v1-multi-turn" if ref else "pair-v2-multi-turn"
        values = {"question_1": question.turns[0], "question_2": question.turns[1],
                  "answer_a_1": answers_a[0], "answer_a_2": answers_a[1],
                  "answer_b_1": answers_b[0], "answer_b_2": answers_b[1]}
        if ref:
            values.update(ref_answer_1=references[0], ref_answer_2=references[1])  # type: ignore[index]
    return name, _messages(name, language, language_rule, **values)


def rating_call(messages: tuple[Message, ...], tags: Mapping[str, Any], language: str = "ja") -> JudgeCall:
    """A 1-10 grading call read as FastChat reads it (``[[N]]``, then ``[N]``), then tolerantly."""
    repair = mt_bench_prompt("repair_rating", language)["text"]
    return JudgeCall(
        messages=messages,
        parse=lambda text: parse_score(text, SCALE, BRACKETS_FIRST),
        repair=lambda error: repair.format(error=error),
        tags=dict(tags),
    )


def verdict_call(messages: tuple[Message, ...], tags: Mapping[str, Any], language: str = "ja") -> JudgeCall:
    """A pairwise call read as ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie)."""
    repair = mt_bench_prompt("repair_verdict", language)["text"]
    return JudgeCall(messages=messages, parse=parse_verdict, repair=lambda error: repair.format(error=error),
                     tags=dict(tags))
