"""The RAG prompt: a versioned template (Japanese and English) placing the retrieved chunks and the question.

The built-in template is ``rag/templates/rag_qa.yaml``; a file of one's own has the same shape
(``name``, ``version``, and per language a ``template``), or is a bare Jinja file (``.j2``/``.jinja``/
``.txt``). Templates render in hyouka's Jinja sandbox and see ``question``, ``k`` and ``chunks``
(each with ``title``, ``text``, ``doc_id``, ``id``, ``rank``, ``score``). Every run records the
template's name, version, language and content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyouka.rag.index import Hit
from hyouka.tasks.prompts import PromptError, render
from hyouka.yamlio import load_yaml

__all__ = ["BUILTIN_PROMPT", "RagPrompt", "context_text", "load_prompt"]

TEMPLATES = Path(__file__).with_name("templates")
BUILTIN_PROMPT = "rag_qa"


@dataclass(frozen=True)
class RagPrompt:
    """A RAG template in one language."""

    name: str
    version: str
    language: str
    template: str
    source: str = ""

    def render(self, question: str, hits: Sequence[Hit]) -> str:
        chunks = [h.to_dict() for h in hits]
        try:
            return render(self.template, {"question": question, "chunks": chunks, "k": len(chunks)})
        except PromptError as exc:
            raise PromptError(f"RAG prompt {self.source or self.name}: {exc}") from None

    def content_hash(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "language": self.language, "hash": self.content_hash()}


def load_prompt(spec: str | Path | None = None, language: str = "ja") -> RagPrompt:
    """The built-in template (``spec`` ``None`` or ``"rag_qa"``) or a template file, in ``language``."""
    if spec is None or str(spec) == BUILTIN_PROMPT:
        path = TEMPLATES / f"{BUILTIN_PROMPT}.yaml"
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"RAG prompt template {path} not found (or use the built-in {BUILTIN_PROMPT!r})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PromptError(f"RAG prompt template {path} is not UTF-8 text") from None
    if path.suffix.lower() not in (".yaml", ".yml"):
        return RagPrompt(path.stem, "file", language, text, str(path))
    data = load_yaml(text)
    if not isinstance(data, dict) or not data.get("name"):
        raise PromptError(f"RAG prompt template {path} must be a mapping with name, version and per-language template")
    variant = data.get(language)
    if not isinstance(variant, dict) or not isinstance(variant.get("template"), str):
        langs = ", ".join(k for k, v in data.items() if isinstance(v, dict))
        raise PromptError(f"RAG prompt template {path} has no {language!r} template; languages: {langs}")
    return RagPrompt(str(data["name"]), str(data.get("version", "")), language, variant["template"], str(path))


def context_text(hits: Sequence[Hit]) -> str:
    """The retrieved chunks as one context for judges: ``[1] title`` then its text, per chunk."""
    parts = []
    for h in hits:
        head = f"[{h.rank}] {h.chunk.title}".rstrip()
        parts.append(f"{head}\n{h.chunk.text}")
    return "\n\n".join(parts)
