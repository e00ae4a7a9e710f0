"""Tolerant reading of judge outputs: a score and a justification, or a pairwise verdict.

Judges answer in many shapes: JSON (bare or in a code fence), ``Rating: [[8]]``,
``評価：［［８］］``, ``スコア：４`` with ``理由：…``, ``4/5``, ``4点``. Text is NFKC-normalised
first, so full-width digits, colons and brackets read as ASCII. A score outside the
scale is a parse error, never clipped.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Parsed", "Strategy", "parse_score", "parse_verdict"]

# "brackets" is ``[[N]]``; "bracket" a lone ``[N]`` (one glued to a word, ``資料[2]``, is a citation, never a score)
Strategy = Literal["json", "brackets", "keyed", "bracket", "bare"]
DEFAULT_ORDER: tuple[Strategy, ...] = ("json", "brackets", "keyed", "bracket", "bare")
BRACKETS_FIRST: tuple[Strategy, ...] = ("brackets", "bracket", "json", "keyed", "bare")  # FastChat: [[N]], then [N]

SCORE_KEYS = ("score", "rating", "grade", "スコア", "点数", "得点", "評価", "総合評価", "評点")
REASON_KEYS = ("justification", "reason", "reasoning", "rationale", "explanation", "feedback",
               "理由", "根拠", "説明", "評価理由", "コメント")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_DOUBLE_BRACKET = re.compile(r"\[\[\s*" + _NUMBER + r"\s*\]\]")
# a lone [N]: not right after a letter, digit, kana or kanji (``資料[2]``, ``text[1]`` cite sources)
_SINGLE_BRACKET = re.compile(r"(?<![\w\u3040-\u30ff\u3400-\u9fff])\[\s*" + _NUMBER + r"\s*\]")
_KEYED = re.compile(
    r"(?:" + "|".join(sorted(map(re.escape, SCORE_KEYS), key=len, reverse=True)) + r")"
    r"[\s*_\"'」#]*(?:[:=]|は|\n)[\s*_\"'「#]*"
    r"(?:\d+\s*(?:点満点|点|段階)\s*(?:中|で)\s*(?:で\s*)?)?"  # "5点中4点", "5段階で4": the scale first
    + _NUMBER + r"(?:\s*(?:/|点|out of)\s*\d*)?",
    re.IGNORECASE,
)
_OF_SCALE = re.compile(_NUMBER + r"\s*(?:/\s*\d+|点)")
_REASON_LINE = re.compile(
    r"(?:" + "|".join(sorted(map(re.escape, REASON_KEYS), key=len, reverse=True)) + r")[\s*_\"'」]*[:=][\s*\"'「]*"
    r"(.+?)(?=\n\s*(?:" + "|".join(map(re.escape, SCORE_KEYS)) + r")\b|\Z)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Parsed:
    """What was read from a judge's text: a value (score or verdict) or an error saying why not."""

    value: Any = None
    justification: str | None = None
    error: str | None = None
    strategy: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def normalize(text: str) -> str:
    """NFKC: full-width digits, letters, colons and brackets become ASCII."""
    return unicodedata.normalize("NFKC", text)


def _json_candidates(text: str) -> list[str]:
    out = [m.group(1) for m in _FENCE.finditer(text)]
    start = text.find("{")
    while start != -1:
        depth, in_str, escape = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                escape = not escape and ch == "\\"
                if ch == '"' and not escape:
                    in_str = False
                continue
            if ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    out.append(text[start : i + 1])
                    break
        start = text.find("{", start + 1)
    return out


def _lookup(data: dict[str, Any], keys: Sequence[str]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.search(_NUMBER, normalize(value))
        return float(m.group(1)) if m else None
    return None


def _from_json(text: str) -> tuple[float | None, str | None]:
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            score = _as_number(_lookup(data, SCORE_KEYS))
            if score is not None:
                reason = _lookup(data, REASON_KEYS)
                return score, None if reason is None else str(reason)
    return None, None


def _find_score(text: str, strategy: Strategy) -> tuple[float | None, str | None]:
    if strategy == "json":
        return _from_json(text)
    if strategy in ("brackets", "bracket"):
        m = (_DOUBLE_BRACKET if strategy == "brackets" else _SINGLE_BRACKET).search(text)
        return (float(m.group(1)), None) if m else (None, None)
    if strategy == "keyed":
        matches = list(_KEYED.finditer(text)) or list(_OF_SCALE.finditer(text))
        return (float(matches[-1].group(1)), None) if matches else (None, None)
    stripped = text.strip().strip("*").strip()
    return (float(stripped), None) if re.fullmatch(_NUMBER, stripped) else (None, None)


def _reason_from_text(text: str) -> str | None:
    m = _REASON_LINE.search(text)
    if m:
        return m.group(1).strip() or None
    cleaned = _FENCE.sub("", text).strip()
    return cleaned or None


def parse_score(
    text: str | None,
    scale: tuple[float, float] = (1, 5),
    order: Sequence[Strategy] = DEFAULT_ORDER,
) -> Parsed:
    """Read a score on ``scale`` (inclusive) and a justification from a judge's text."""
    if text is None or not text.strip():
        return Parsed(error="empty judgment")
    norm = normalize(text)
    for strategy in order:
        score, reason = _find_score(norm, strategy)
        if score is None:
            continue
        if math.isnan(score) or not scale[0] <= score <= scale[1]:
            return Parsed(error=f"score {score:g} is outside the {scale[0]:g}-{scale[1]:g} scale", strategy=strategy)
        if score == int(score):
            score = float(int(score))
        return Parsed(value=score, justification=reason or _reason_from_text(norm), strategy=strategy)
    return Parsed(error="no score found in the judgment")


_VERDICT_MARK = re.compile(r"\[\[\s*(A|B|C|TIE|引き分け|同等)\s*\]\]", re.IGNORECASE)
# a verdict word, whole: "Assistant B", "model_b", "アシスタントA", "tie"; never the B of "Both"
_VERDICT_WORD = (r"(?:(?:assistant|model|answer|response|アシスタント|モデル|回答)[\s_]*)?"
                 r"(A|B|C|tie|draw|引き分け|同等|互角)(?![A-Za-z0-9])")
_VERDICT_KEYED = re.compile(
    r"(?:verdict|winner|勝者|判定|最終判断|結論)[\s*_\"'」]*[:=][\s*_\"'「\[]*" + _VERDICT_WORD, re.IGNORECASE
)
_VERDICT_ALONE = re.compile(r"[\s*_\"'「\[]*" + _VERDICT_WORD + r"[\s*_\"'」\].。]*", re.IGNORECASE)
_VERDICT_JSON_KEYS = ("verdict", "winner", "勝者", "判定")


def _verdict_value(token: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from one verdict word (``"Assistant B"``, ``"[[C]]"``, ``"引き分け"``)."""
    m = _VERDICT_ALONE.fullmatch(token.strip())
    if m is None:
        return None
    word = m.group(1).upper()
    return word if word in ("A", "B") else "tie"


def parse_verdict(text: str | None) -> Parsed:
    """Read a pairwise verdict: ``"A"``, ``"B"`` or ``"tie"`` (``[[A]]``, ``[[C]]``, JSON, ``勝者: A``…).

    The last marked verdict counts (judges state their final verdict at the end).
    """
    if text is None or not text.strip():
        return Parsed(error="empty judgment")
    norm = normalize(text)
    for candidate in _json_candidates(norm):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            found = _lookup(data, _VERDICT_JSON_KEYS)
            value = _verdict_value(str(found)) if found is not None else None
            if value:
                reason = _lookup(data, REASON_KEYS)
                return Parsed(value=value, justification=None if reason is None else str(reason), strategy="json")
    for pattern, strategy in ((_VERDICT_MARK, "brackets"), (_VERDICT_KEYED, "keyed")):
        marks = list(pattern.finditer(norm))
        if marks:
            value = _verdict_value(marks[-1].group(1))
            return Parsed(value=value, justification=_reason_from_text(norm), strategy=strategy)
    return Parsed(error="no verdict ([[A]], [[B]] or [[C]]) found in the judgment")
