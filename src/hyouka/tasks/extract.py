"""Pull an answer out of generated text.

Each extractor returns ``(extracted_text, prediction)``; a prediction of
``None`` means the answer was outside what the task accepts (a format error,
reported as its own rate next to accuracy).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# whole numbers only: a search never restarts inside one ("3.5" is never read as "5")
_NUMBER = re.compile(r"(?<![\d.])[-+]?\d+(?:\.\d+)?(?![\d.]*\d)")
_GLUED = re.compile(r"[A-Za-z\u3400-\u4dbf\u4e00-\u9fff]")  # "文1", "A2": a number that names something
# the answer's own label right before it: "類似度は4", "類似度：3.5", "score = 2"
_SCORE_LABEL = re.compile(r"(?:類似度|類似性|スコア|score|similarity|評価|点数|答え|回答|answer)"
                          r"(?:は|が|を|:|=|\s|\*)*$", re.IGNORECASE)
# what follows a number that is a count or a scale, not the answer: "2つの文", "5段階", "5点満点"
_NOT_ANSWER_AFTER = re.compile(r"\s*(?:つ|個|文|番|段階|点満点|点中|件|[〜~～–-]\s*[-+]?\d)")
# the end of a range echoed from the instruction: "0.0〜5.0"
_RANGE_BEFORE = re.compile(r"(?:[〜~～–]\s*|\d\s*-\s*|\d)$")
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
    """The answer line's number (full-width digits accepted), checked against a range.

    Numbers are read whole ("3.5", "13"). The one taken is, in order of preference: the first
    right after the answer's label ("類似度は4", "類似度3.5"); else the first that names nothing
    ("文1と文2の…4": a number glued to a letter or kanji names a thing), counts nothing ("2つの文")
    and is no scale ("5段階", "/5") nor the end of an echoed range ("0.0〜5.0"); else the first number.
    """
    line = first_line(text)
    normalized = unicodedata.normalize("NFKC", line)
    numbers = list(_NUMBER.finditer(normalized))
    if not numbers:
        return line, None
    labelled = [m for m in numbers if _SCORE_LABEL.search(normalized[: m.start()])]
    free = [m for m in numbers if not _names_or_counts(normalized, m)]
    match = (labelled or free or numbers)[0]
    value = float(match.group())
    if value_range is not None and not value_range[0] <= value <= value_range[1]:
        return line, None
    return line, value


def _names_or_counts(text: str, match: re.Match[str]) -> bool:
    """Whether a number labels a thing ("文12"), counts ("2つ"), is a scale ("5段階", "4/5") or a range's end."""
    before = text[: match.start()]
    if before and (_GLUED.fullmatch(before[-1]) or before.rstrip().endswith("/") or _RANGE_BEFORE.search(before)):
        return True
    return _NOT_ANSWER_AFTER.match(text, match.end()) is not None


def extract_text(text: str, stop: Sequence[str] = ()) -> tuple[str, str | None]:
    """A free-text answer: the first non-empty line; empty output is a format error."""
    line = first_line(text, stop)
    return line, (line or None)
