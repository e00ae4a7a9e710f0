"""Pull an answer out of generated text.

Each extractor returns ``(extracted_text, prediction)``; a prediction of
``None`` means the answer was outside what the task accepts (a format error,
reported as its own rate next to accuracy).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# a number right after a Latin letter or a kanji labels something ("文1", "A2"): not the answer
_UNLABELLED_NUMBER = re.compile(r"(?<![A-Za-z\u3400-\u4dbf\u4e00-\u9fff])[-+]?\d+(?:\.\d+)?")
_EDGE_PUNCT = " \t\r\n。、．，.,:：;；「」『』\"'()（）[]【】"


def first_line(text: str, stop: Sequence[str] = ()) -> str:
    """The answer part of a completion: cut at the first stop string, first non-empty line."""
    for s in stop:
        if s and s in text and s.strip():
            text = text.split(s, 1)[0]
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _canonical(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(_EDGE_PUNCT).casefold()


def extract_choice(text: str, choices: Sequence[str]) -> tuple[str, int | None]:
    """Match the answer line against the choices: exactly, else the one choice it contains."""
    line = first_line(text)
    answer = _canonical(line)
    canon = [_canonical(c) for c in choices]
    if answer in canon:
        return line, canon.index(answer)
    contained = [i for i, c in enumerate(canon) if c and c in answer]
    if len(contained) == 1:
        return line, contained[0]
    if len(contained) > 1:
        # several choices appear: take the longest one only if it contains all the others
        longest = max(contained, key=lambda i: len(canon[i]))
        if all(canon[i] in canon[longest] for i in contained):
            return line, longest
    return line, None


def extract_number(text: str, value_range: tuple[float, float] | None = None) -> tuple[str, float | None]:
    """The answer line's first number that is no label (full-width digits accepted), checked against a range.

    "文1と文2の類似度は4" reads as 4: numbers glued to a letter or kanji ("文1") name things.
    When every number is glued ("約4"), the first one is taken.
    """
    line = first_line(text)
    normalized = unicodedata.normalize("NFKC", line)
    match = _UNLABELLED_NUMBER.search(normalized) or _NUMBER.search(normalized)
    if match is None:
        return line, None
    value = float(match.group())
    if value_range is not None and not value_range[0] <= value <= value_range[1]:
        return line, None
    return line, value


def extract_text(text: str, stop: Sequence[str] = ()) -> tuple[str, str | None]:
    """A free-text answer: the first non-empty line; empty output is a format error."""
    line = first_line(text, stop)
    return line, (line or None)
