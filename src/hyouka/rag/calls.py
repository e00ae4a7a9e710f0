"""Embedding and retrieval as engine requests, so they share the response cache, call counts and accounting.

An embedder and an index's retriever are backends of the engine's
:class:`~hyouka.engine.executor.Executor` like any model: an :class:`EmbedRequest` is cached
by (embedder identity, text) and a :class:`RetrieveRequest` by (index identity and hash, query,
k). Their :class:`~hyouka.models.base.Response` carries the vector (base64 float32) or the hits
(JSON) as ``text``, with the call's latency and embedding tokens.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hyouka.models.base import Capabilities

__all__ = ["EmbedRequest", "RetrievalCapabilities", "RetrieveRequest", "decode_vector", "encode_vector"]


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """Embed ``text`` (any query or passage prefix the embedder wants is already in it)."""

    text: str
    kind: Literal["embed"] = "embed"


@dataclass(frozen=True, slots=True)
class RetrieveRequest:
    """The ``k`` best chunks of an index for ``query``."""

    query: str
    k: int
    kind: Literal["retrieve"] = "retrieve"


@dataclass(frozen=True)
class RetrievalCapabilities(Capabilities):
    """A backend's capabilities, with the two request kinds of retrieval."""

    embed: bool = False
    retrieve: bool = False


def encode_vector(vector: np.ndarray) -> str:
    """A vector as the base64 of its little-endian float32 bytes (how it is cached)."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
