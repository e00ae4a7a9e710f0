"""Answer pre-processing of generated text, before an extractor reads the answer.

- ``before_blank_line``: the text before the first blank line (llm-jp-eval scores
  ``output.split("\\n\\n")[0]``);
- ``strip_answer_label``: a leading ``回答:`` / ``回答：`` label is removed, as the Nejumi
  leaderboard does before scoring;
- ``regex_answer``: lm-eval's ``regex`` filter followed by ``take_first``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_ANSWER_LABEL = re.compile(r"^\s*回答\s*[:：]\s*")


def before_blank_line(text: str) -> str:
    return text.split("\n\n", 1)[0]


def strip_answer_label(text: str) -> str:
    return _ANSWER_LABEL.sub("", text, count=1)


STEPS = {"before_blank_line": before_blank_line, "strip_answer_label": strip_answer_label}


def preprocess_answer(text: str, steps: Sequence[str]) -> str:
    """``text`` after each named step in turn."""
    for step in steps:
        text = STEPS[step](text)
    return text


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regex_answer(text: str, pattern: str, select: int = 0, fallback: str | None = None) -> str | None:
    """As lm-eval's ``RegexFilter``: ``findall``, the ``select``-th match (its first non-empty group), stripped."""
    matches = _compiled(pattern).findall(text)
    if not matches:
        return fallback
    try:
        match = matches[select]
    except IndexError:
        return fallback
    if isinstance(match, tuple):
        non_empty = [m for m in match if m]
        if not non_empty:
            return fallback
        match = non_empty[0]
    return match.strip()
