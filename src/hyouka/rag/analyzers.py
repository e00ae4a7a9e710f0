"""What BM25 counts: text turned into terms, after NFKC and lower-casing.

- ``morphemes`` (default): MeCab morphemes (fugashi + unidic-lite), symbols and spaces dropped.
  Japanese marks no word boundaries; morphemes are its words.
- ``bigrams``: overlapping character bigrams of the text without spaces (a common
  dictionary-free choice for Japanese).
- ``whitespace``: the text split at spaces, as English-minded tools do; in Japanese that is one
  term per sentence, kept here to show why it fails.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

__all__ = ["ANALYZERS", "analyze", "analyzer", "analyzer_info"]

Analyzer = Callable[[str], list[str]]


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _is_term(surface: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in surface)


def morphemes(text: str) -> list[str]:
    from hyouka.metrics.text import _tagger

    return [w.surface for w in _tagger()(_normal(text)) if _is_term(w.surface)]


def bigrams(text: str) -> list[str]:
    chars = [ch for ch in _normal(text) if not ch.isspace() and unicodedata.category(ch)[0] != "P"]
    if len(chars) < 2:
        return chars
    return [chars[i] + chars[i + 1] for i in range(len(chars) - 1)]


def whitespace(text: str) -> list[str]:
    return _normal(text).split()


ANALYZERS: dict[str, Analyzer] = {"morphemes": morphemes, "bigrams": bigrams, "whitespace": whitespace}


def analyzer(name: str) -> Analyzer:
    """The analyzer called ``name``; ``ValueError`` naming the known ones."""
    try:
        return ANALYZERS[name]
    except KeyError:
        raise ValueError(f"unknown analyzer {name!r}; use one of: {', '.join(ANALYZERS)}") from None


def analyze(name: str, texts: Sequence[str]) -> list[list[str]]:
    """The terms of each text."""
    fn = analyzer(name)
    return [fn(t) for t in texts]


def analyzer_info(name: str) -> dict[str, str]:
    """What an index records of its analyzer (the MeCab dictionary's versions for morphemes)."""
    analyzer(name)
    if name != "morphemes":
        return {"name": name, "normalization": "NFKC, lower-case"}
    from hyouka.metrics.text import tokenizer_info

    return {"name": name, "normalization": "NFKC, lower-case", "tokenizer": tokenizer_info()}
