"""Answer pre-processing of generated text, before an extractor reads the answer.

- ``before_blank_line``: the text before the first blank line (llm-jp-eval scores
  ``output.split("\\n\\n")[0]``);
- ``strip_answer_label``: every ``応答:``, ``回答:`` and ``答え:`` is removed and the text stripped,
  as the Nejumi leaderboard's ``text_formatter`` does for its QA tasks (before NFKC, so a label
  with a full-width colon stays);
- ``lowercase``: lower-cased, as Nejumi does for its NLI and QA tasks;
- ``regex_answer``: lm-eval's ``regex`` filter followed by ``take_first``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_NEJUMI_LABELS = ("応答:", "回答:", "答え:")


def before_blank_line(text: str) -> str:
    return text.split("\n\n", 1)[0]


def strip_answer_label(text: str) -> str:
    for label in _NEJUMI_LABELS:
        text = text.replace(label, "")
    return text.strip()


STEPS = {"before_blank_line": before_blank_line, "strip_answer_label": strip_answer_label, "lowercase": str.lower}


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
