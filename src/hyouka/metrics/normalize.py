"""Text normalisation shared by the answer-matching metrics."""

from __future__ import annotations

import unicodedata

__all__ = ["is_dropped_char", "nfkc", "normalize_answer"]

# Punctuation (P*), symbols (S*), separators (Z*), control (Cc) and format (Cf, e.g. zero-width space).
_DROPPED_CATEGORY_PREFIXES = ("P", "S", "Z")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf"})


def nfkc(text: str) -> str:
    """Return ``text`` in Unicode NFKC form (full-width Latin and digits become ASCII, and so on)."""
    return unicodedata.normalize("NFKC", text)


def is_dropped_char(char: str) -> bool:
    """Whether ``normalize_answer`` drops ``char``: punctuation, symbols, whitespace and invisible controls."""
    category = unicodedata.category(char)
    return category.startswith(_DROPPED_CATEGORY_PREFIXES) or category in _DROPPED_CATEGORIES


def normalize_answer(text: str) -> str:
    """Normalise an answer for QA matching.

    NFKC, lower-case, then drop every whitespace, punctuation and symbol character (ASCII and
    Japanese alike: ``。、・「」『』（）！？`` …). Letters, digits, kana, kanji and the long-vowel
    mark ``ー`` are kept, so ``"「ＡＢＣ１２３」。"`` and ``"abc 123"`` both become ``"abc123"``.
    """
    return "".join(ch for ch in nfkc(text).lower() if not is_dropped_char(ch))
