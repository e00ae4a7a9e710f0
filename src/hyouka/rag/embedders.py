"""Embedders: ``openai:<model>`` (any ``/v1/embeddings`` server, through the ``openai`` client) and
``hf:<model>`` (a sentence-transformers model, the ``dense`` extra).

Both answer :class:`~hyouka.rag.calls.EmbedRequest` batches with one
:class:`~hyouka.models.base.Response` per text: the vector (base64 float32, see
:func:`~hyouka.rag.calls.encode_vector`), the tokens it cost and its share of the batch's time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hyouka.models.base import Response
from hyouka.models.openai_api import OpenAIModel, public_url
from hyouka.models.openai_retry import MalformedResponseError
from hyouka.rag.calls import EmbedRequest, RetrievalCapabilities, encode_vector

__all__ = ["Embedder", "OpenAIEmbedder", "SentenceTransformerEmbedder", "load_embedder"]

BATCH = 64  # texts per /v1/embeddings request


class Embedder(Protocol):
    name: str
    capabilities: RetrievalCapabilities

    def identity(self) -> dict[str, Any]: ...

    def embed(self, requests: Sequence[EmbedRequest]) -> Iterator[tuple[int, Response]]: ...


def _share(total: int | None, texts: Sequence[str]) -> list[int | None]:
    """A batch's token count divided among its texts in proportion to their length (summing to ``total``)."""
    if total is None:
        return [None] * len(texts)
    lengths = [max(1, len(t)) for t in texts]
    parts = [total * n // sum(lengths) for n in lengths]
    parts[-1] += total - sum(parts)
    return parts


class OpenAIEmbedder(OpenAIModel):
    """``/v1/embeddings`` of an OpenAI-compatible server: batches of :data:`BATCH` texts, ``concurrency`` in
    flight, retried as ``openai:`` models are. ``dimensions`` asks for shorter vectors (text-embedding-3)."""

    def __init__(self, model: str, *, dimensions: int | None = None, batch_size: int = BATCH, **options: Any) -> None:
        super().__init__(model, **options)
        self.capabilities = RetrievalCapabilities(embed=True)
        self.dimensions = dimensions
        self.batch_size = batch_size

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai-embeddings", "model": self.name, "base_url": public_url(self.base_url),
                "dimensions": self.dimensions}

    def embed(self, requests: Sequence[EmbedRequest]) -> Iterator[tuple[int, Response]]:
        groups = [list(range(lo, min(lo + self.batch_size, len(requests))))
                  for lo in range(0, len(requests), self.batch_size)]
        stop = threading.Event()

        def call(k: int) -> Any:
            texts = [requests[i].text for i in groups[k]]
            return self._send(lambda: self._embed_once(texts), stop)  # type: ignore[arg-type,return-value]

        # interrupted, the batches in flight are kept (take_abandoned) and cached by the executor: they were paid for
        yield from self._pool_groups(requests, groups, range(len(groups)), call, stop)

    def _embed_once(self, texts: list[str]) -> list[Response]:
        client = self.client
        extra = {"dimensions": self.dimensions} if self.dimensions else {}
        started = time.perf_counter()
        out = client.embeddings.create(model=self.name, input=texts, **extra)
        latency = time.perf_counter() - started
        data = sorted(getattr(out, "data", None) or [], key=lambda d: d.index)
        if len(data) != len(texts):
            raise MalformedResponseError(f"{len(texts)} texts sent, {len(data)} embeddings returned")
        usage = getattr(out, "usage", None)
        tokens = _share(getattr(usage, "prompt_tokens", None), texts)
        share = latency / len(texts)
        return [Response(text=encode_vector(np.asarray(d.embedding, dtype=np.float32)), prompt_tokens=n,
                         completion_tokens=0, latency_s=share) for d, n in zip(data, tokens, strict=True)]


class SentenceTransformerEmbedder:
    """A sentence-transformers model (a local folder or a hub name in the local cache), vectors normalised."""

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ImportError("hf: embedders need sentence-transformers: pip install 'hyouka[dense]'") from None
        self.name = model
        self.capabilities = RetrievalCapabilities(embed=True)
        self.batch_size = batch_size
        self._model = SentenceTransformer(model, device=device or "cpu")
        first = self._model[0] if len(self._model) else None
        self._revision = weights_revision(model, getattr(getattr(first, "auto_model", None), "config", None))
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        """As ``hf:`` models identify themselves: the name, and the revision of the weights (the hub commit,
        else the content fingerprint of a local folder)."""
        from importlib import metadata

        return {"backend": "sentence-transformers", "model": self.name, "revision": self._revision,
                "sentence_transformers": metadata.version("sentence-transformers"), "normalized": True}

    def embed(self, requests: Sequence[EmbedRequest]) -> Iterator[tuple[int, Response]]:
        tokenizer = getattr(self._model, "tokenizer", None)
        for lo in range(0, len(requests), self.batch_size):
            texts = [r.text for r in requests[lo: lo + self.batch_size]]
            started = time.perf_counter()
            with self._lock:
                vectors = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                             convert_to_numpy=True, show_progress_bar=False)
            share = (time.perf_counter() - started) / len(texts)
            for j, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
                tokens = len(tokenizer(text, add_special_tokens=True)["input_ids"]) if tokenizer else None
                yield lo + j, Response(text=encode_vector(vector), prompt_tokens=tokens, completion_tokens=0,
                                       latency_s=share)


def weights_revision(name: str, config: Any) -> str | None:
    """The revision of a sentence-transformers model's weights, as ``hf:`` models record theirs
    (:func:`~hyouka.models.checkpoint.weights_fingerprint`: the hub commit its transformers ``config``
    came from, else the content fingerprint of a local folder)."""
    from hyouka.models.checkpoint import weights_fingerprint

    return weights_fingerprint(str(Path(name).expanduser()), config, None)


def load_embedder(spec: str, **options: Any) -> Embedder:
    """An embedder from ``openai:<model>`` (``base_url``, ``api_key_env``, ``dimensions``…) or ``hf:<model>``."""
    prefix, sep, name = spec.partition(":")
    options = {k: v for k, v in options.items() if v is not None}
    if sep and name and prefix == "openai":
        return OpenAIEmbedder(name, **options)
    if sep and name and prefix in ("hf", "st"):
        return SentenceTransformerEmbedder(name, **{k: v for k, v in options.items() if k in ("device",
                                                                                               "batch_size")})
    raise ValueError(f"unknown embedder {spec!r}: use openai:<model> (any /v1/embeddings server) or "
                     "hf:<sentence-transformers model>")
