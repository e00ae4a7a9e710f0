"""An optional cross-encoder reranker: ``hf:<cross-encoder>`` (sentence-transformers' ``CrossEncoder``, the
``dense`` extra) scores each (question, chunk) pair of the first candidates and orders them by it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CrossEncoderReranker", "load_reranker"]


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder (a local folder or a cached hub name)."""

    def __init__(self, model: str, device: str | None = None) -> None:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError:
            raise ImportError("rerankers need sentence-transformers: pip install 'hyouka[dense]'") from None
        self.name = model
        self._model = CrossEncoder(model, device=device or "cpu")
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        """The name and the revision of the weights, as embedders and ``hf:`` models record them."""
        from hyouka.rag.embedders import weights_revision

        config = getattr(getattr(self._model, "model", None), "config", None)
        return {"backend": "cross-encoder", "model": self.name, "revision": weights_revision(self.name, config)}

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        with self._lock:
            out = self._model.predict([(query, p) for p in passages], show_progress_bar=False)
        return [float(x) for x in out]


def load_reranker(spec: str) -> CrossEncoderReranker:
    prefix, sep, name = spec.partition(":")
    if not (sep and name and prefix in ("hf", "st")):
        raise ValueError(f"unknown reranker {spec!r}: use hf:<cross-encoder model or folder>")
    return CrossEncoderReranker(str(Path(name).expanduser()) if name.startswith("~") else name)
