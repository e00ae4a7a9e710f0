"""An index as an engine backend: :class:`~hyouka.rag.calls.RetrieveRequest` in, hits out, cached and counted.

Through an :class:`~hyouka.engine.executor.Executor`, a retrieval is looked up in the response
cache by (index identity and hash, query, k) before anything is searched or embedded, so a run
resumed after a kill embeds and searches nothing twice. Each answer's ``text`` is the hits as
JSON; ``latency_s`` is the time to embed the query (none when its embedding is cached) and to
search; ``prompt_tokens`` are the query's embedding tokens (0 for BM25).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hyouka.models.base import Response
from hyouka.rag.calls import RetrievalCapabilities, RetrieveRequest

if TYPE_CHECKING:
    from hyouka.rag.index import Hit, Index

__all__ = ["IndexRetriever", "read_hits"]


class IndexRetriever:
    """Answers retrieval requests from one index (each query searched alone, so each has its own latency)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.name = f"index:{index.name}"
        self.capabilities = RetrievalCapabilities(retrieve=True)

    def identity(self) -> dict[str, Any]:
        return self.index.identity()

    def retrieve(self, requests: Sequence[RetrieveRequest]) -> Iterator[tuple[int, Response]]:
        """Embed the queries in batches (dense and hybrid), then search each one on its own."""
        index = self.index
        vectors = embeds = None
        if index.embeds_queries:
            try:
                vectors, embeds = index.embed_queries([r.query for r in requests])
            except Exception as exc:  # a failed embedding call: these requests fail, the run goes on
                failure = Response.failure(f"{type(exc).__name__}: {exc}")
                yield from ((i, failure) for i in range(len(requests)))
                return
        for i, request in enumerate(requests):
            started = time.perf_counter()
            hits, _ = index._search([request.query], request.k, None if vectors is None else vectors[i: i + 1])
            latency = time.perf_counter() - started
            tokens = 0
            if embeds is not None:  # its share of the batch's time; none for an embedding from the cache
                tokens = embeds[i].prompt_tokens or 0
                latency += 0.0 if embeds[i].cached else (embeds[i].latency_s or 0.0)
            text = json.dumps([h.to_dict() for h in hits[0]], ensure_ascii=False)
            yield i, Response(text=text, prompt_tokens=tokens, completion_tokens=0, latency_s=latency)


def read_hits(response: Response) -> list[Hit]:
    """The hits a retrieval response carries."""
    from hyouka.rag.index import Hit

    return [Hit.from_dict(d) for d in json.loads(response.text or "[]")]
