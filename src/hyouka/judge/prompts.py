"""Grading prompts: a rubric and one row's fields rendered as chat messages, and the repair request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyouka.judge.rubric import Rubric, prompt_data
from hyouka.models.base import Message
from hyouka.tasks.prompts import PromptError, render

__all__ = ["SECTION_ORDER", "grading_messages", "mt_bench_prompt", "repair_text"]

SECTION_ORDER = ("question", "context", "ground_truth", "answer")


def _render(source: str, values: Mapping[str, Any], where: str) -> str:
    """A rubric or frame template rendered in the sandbox (one trailing newline of the template dropped)."""
    for newline in ("\r\n", "\n", "\r"):
        if source.endswith(newline):
            source = source[: -len(newline)]
            break
    try:
        return render(source, values)
    except PromptError as exc:
        raise PromptError(f"{where}: {exc}") from None


def _frame(language: str) -> dict:
    frames = prompt_data("frames")
    if language not in frames:
        raise ValueError(f"no prompt frame for language {language!r}; frames: ja, en")
    return frames[language]


def grading_messages(rubric: Rubric, fields: Mapping[str, str]) -> tuple[Message, ...]:
    """System and user messages asking a judge to grade ``fields['answer']`` by ``rubric``."""
    frame = _frame(rubric.language)
    labels = frame["labels"]
    sections = [(labels[name], fields[name]) for name in SECTION_ORDER if name in rubric.inputs]
    lo, hi = rubric.scale
    values = {
        "lo": lo,
        "hi": hi,
        "title": rubric.title,
        "criteria": rubric.criteria.strip(),
        "levels": sorted(rubric.levels.items(), reverse=True),
        "sections": sections,
        **{name: fields.get(name, "") for name in SECTION_ORDER},
    }
    where = f"{rubric.source}: template" if rubric.template else f"the {rubric.language} prompt frame"
    user = _render(rubric.template or frame["template"], values, where)
    return (Message("system", rubric.system or frame["system"]), Message("user", user))


def repair_text(rubric: Rubric, error: str) -> str:
    """The one follow-up message sent when a rubric grade could not be read."""
    lo, hi = rubric.scale
    return _render(_frame(rubric.language)["repair"], {"lo": lo, "hi": hi, "error": error},
                   f"the {rubric.language} repair frame")


def mt_bench_prompt(name: str, language: str = "ja", language_rule: bool = True) -> dict[str, str]:
    """An MT-Bench judge prompt (``single-v1``, ``pair-math-v1-multi-turn``…, ``repair_rating``).

    ``language_rule`` inserts the sentence asking the judge to deduct points for an answer not in
    the user's language (the Japanese fork's later prompts); without it, the original prompts.
    """
    data = prompt_data("mt_bench")
    if language not in data or name not in data[language]:
        raise ValueError(f"no MT-Bench judge prompt {name!r} in language {language!r}")
    value = data[language][name]
    if not isinstance(value, dict):
        return {"text": value}
    if not language_rule:
        return dict(value)
    rule = data[language]["language_rule"]
    out = dict(value)
    for key in ("prompt_template", "system_prompt"):  # the instruction is in one of the two
        anchor = next((a for a in data[language]["language_rule_after"] if a in out[key]), None)
        if anchor is not None:
            out[key] = out[key].replace(anchor, anchor + rule, 1)
            return out
    raise ValueError(f"MT-Bench prompt {name!r} ({language}) has no place for the language rule")


def mt_bench_prompt_version(language_rule: bool = True) -> str:
    version = str(prompt_data("mt_bench")["version"])
    return f"{version}+language_rule" if language_rule else version
