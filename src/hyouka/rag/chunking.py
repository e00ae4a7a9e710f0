"""Chunking: documents cut into overlapping pieces by tokens, characters or Japanese sentences.

Each :class:`Chunk` keeps its document's id and title and its character span in the document's
text; its id is a content hash (document id, span and text), so the same document chunked the
same way always gives the same ids. Token units count the tokens of a named Hugging Face tokenizer
(the model's, for prompts sized to its context) or, without one, MeCab morphemes (fugashi +
unidic-lite). Sentences end at 。！？!? and at line ends, never inside 「」 or 『』.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hyouka.rag.documents import Document

__all__ = ["UNITS", "Chunk", "Chunker", "ChunkingError", "sentence_spans"]

Unit = Literal["tokens", "characters", "sentences"]
UNITS: tuple[str, ...] = ("tokens", "characters", "sentences")
_ENDS = frozenset("。！？!?")
_OPEN = {"「": "」", "『": "』"}
_TRAILING = frozenset("」』）)\"'")  # closers that stay with the sentence they end
Span = tuple[int, int]


class ChunkingError(ValueError):
    """Chunking settings that cannot work (overlap not below the size, an unknown unit)."""


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text == document.text[start:end]``."""

    id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_id(doc_id: str, start: int, end: int, text: str) -> str:
    return hashlib.sha256(f"{doc_id}\0{start}\0{end}\0{text}".encode()).hexdigest()[:20]


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of ``text``: ends at 。！？!? or a line end, never inside 「」/『』.

    A quotation left open is closed at the next blank line, so one stray 「 cannot swallow a document.
    Whitespace between sentences belongs to no span.
    """
    spans: list[Span] = []
    closers: list[str] = []
    start = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _OPEN:
            closers.append(_OPEN[ch])
        elif closers and ch == closers[-1]:
            closers.pop()
        end = None
        if ch == "\n":
            if text.startswith("\n\n", i) or not closers:
                closers.clear()
                end = i
        elif ch in _ENDS and not closers:
            j = i + 1
            while j < n and (text[j] in _ENDS or text[j] in _TRAILING):
                j += 1
            end, i = j, j - 1
        if end is not None:
            _add_span(text, start, end, spans)
            start = end
        i += 1
    _add_span(text, start, n, spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[Span]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def _morpheme_spans(text: str) -> list[Span]:
    from hyouka.metrics.text import _tagger

    spans, pos = [], 0
    for word in _tagger()(text):
        surface = word.surface
        at = text.find(surface, pos)
        if at < 0:  # the tagger rewrote something: fall back to where we are
            at = pos
        spans.append((at, at + len(surface)))
        pos = at + len(surface)
    return spans


def _hf_spans(tokenizer: Any) -> Callable[[str], list[Span]]:
    def spans(text: str) -> list[Span]:
        out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [(int(s), int(e)) for s, e in out["offset_mapping"] if e > s]

    return spans


def load_tokenizer(name: str) -> Any:
    """A fast Hugging Face tokenizer (a local folder or a cached hub name) for token-sized chunks."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ImportError("chunking by a Hugging Face tokenizer needs transformers: pip install 'hyouka[hf]'") from None
    tokenizer = AutoTokenizer.from_pretrained(name)
    if not getattr(tokenizer, "is_fast", False):
        raise ChunkingError(f"tokenizer {name!r} is not a fast tokenizer: it gives no character offsets to cut at")
    return tokenizer


@dataclass(frozen=True)
class Chunker:
    """How documents are cut: ``unit``, ``size`` (units per chunk; for sentences, characters) and ``overlap``.

    ``tokenizer`` names the Hugging Face tokenizer counted by ``unit="tokens"``; ``None`` counts
    MeCab morphemes.
    """

    unit: Unit = "tokens"
    size: int = 512
    overlap: int = 64
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ChunkingError(f"unknown chunk unit {self.unit!r}; use one of: {', '.join(UNITS)}")
        if self.size < 1:
            raise ChunkingError(f"chunk size must be at least 1, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ChunkingError(f"chunk overlap must be at least 0 and below the chunk size {self.size}, "
                                f"got {self.overlap}")

    def describe(self) -> dict[str, Any]:
        from hyouka.metrics.text import tokenizer_info

        out: dict[str, Any] = {"unit": self.unit, "size": self.size, "overlap": self.overlap,
                               "tokenizer": self.tokenizer}
        if self.unit == "tokens" and self.tokenizer is None:
            out["tokenizer"] = tokenizer_info()["name"]
        return out

    def chunks(self, doc: Document, tokenizer: Any = None) -> list[Chunk]:
        """The chunks of one document (``tokenizer``: the loaded tokenizer, to load it once for many)."""
        text = doc.text
        if self.unit == "sentences":
            spans = _pack(sentence_spans(text), self.size, self.overlap)
        else:
            if self.unit == "characters":
                units: Sequence[Span] = [(i, i + 1) for i in range(len(text))]
            elif self.tokenizer is None:
                units = _morpheme_spans(text)
            else:
                units = _hf_spans(tokenizer or load_tokenizer(self.tokenizer))(text)
            spans = _windows(units, self.size, self.overlap)
        out = []
        for start, end in spans:
            piece = text[start:end]
            out.append(Chunk(chunk_id(doc.id, start, end, piece), doc.id, doc.title, piece, start, end))
        return out

    def chunk_all(self, docs: Sequence[Document]) -> list[Chunk]:
        tokenizer = load_tokenizer(self.tokenizer) if self.unit == "tokens" and self.tokenizer else None
        return [c for d in docs for c in self.chunks(d, tokenizer)]


def _windows(units: Sequence[Span], size: int, overlap: int) -> list[Span]:
    """Spans of windows of ``size`` units, each starting ``size - overlap`` units after the last."""
    if not units:
        return []
    step = size - overlap
    out = []
    for first in range(0, len(units), step):
        last = min(first + size, len(units)) - 1
        out.append((units[first][0], units[last][1]))
        if last == len(units) - 1:
            break
    return out


def _pack(sentences: Sequence[Span], size: int, overlap: int) -> list[Span]:
    """Sentences packed into chunks of at most ``size`` characters; each chunk after the first repeats the
    previous chunk's last sentences up to ``overlap`` characters. A sentence longer than ``size`` is cut."""
    pieces: list[Span] = []
    for s, e in sentences:  # a sentence longer than a chunk is cut by characters
        pieces += [(p, min(p + size, e)) for p in range(s, e, size)] if e - s > size else [(s, e)]
    out: list[Span] = []
    i = 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1][1] - pieces[i][0] <= size:
            j += 1
        out.append((pieces[i][0], pieces[j][1]))
        if j == len(pieces) - 1:
            break
        back = j + 1  # the next chunk starts after this one, moved back over overlap's worth of sentences
        while back - 1 > i and pieces[j][1] - pieces[back - 1][0] <= overlap:
            back -= 1
        i = back
    return out
