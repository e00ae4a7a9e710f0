"""A RAG step seen by a dry run: each question's prompt without a paid call, exact where that is free.

For each question, the chunks a run would put in its prompt are found the cheapest way there is:

- ``cached``: the retrieval (index hash, question, k) is in the response cache;
- ``searched``: the index needs no paid call to search — BM25 is local, and a dense index whose query
  vector is cached searches FAISS locally — and has no reranker (a cross-encoder per question is no
  dry run's work);
- ``bounded``: otherwise (the query's embedding is not cached): the prompt is built from the index's
  ``k`` longest chunks, an upper bound of any prompt the retrieval can give, and the question's
  embedding is priced at the embedder's rate.

So prompts, and the model's and the judges' calls built on them, are exact for ``cached`` and
``searched`` questions and upper estimates for ``bounded`` ones; :attr:`RetrievalPlan.method` says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyouka.engine.accounting import token_counter
from hyouka.rag.calls import EmbedRequest, RetrieveRequest, decode_vector
from hyouka.rag.index import Hit
from hyouka.rag.prompt import context_text
from hyouka.rag.retriever import read_hits

__all__ = ["PlannedRetrieval", "RetrievalPlan", "plan_retrieval"]


@dataclass(frozen=True)
class PlannedRetrieval:
    """One question's prompt and context; ``how``: ``cached``, ``searched`` or ``bounded``."""

    prompt: str
    context: str
    how: str


@dataclass
class RetrievalPlan:
    """Every question's planned retrieval, and the query embeddings the run would pay for."""

    rows: dict[int, PlannedRetrieval] = field(default_factory=dict)
    embedder: str | None = None
    embed_requests: int = 0
    embed_cached: int = 0
    embed_calls: int = 0
    embed_tokens: int = 0
    embed_cost_usd: float | None = 0.0
    embed_priced: bool = True

    def count(self, how: str) -> int:
        return sum(1 for r in self.rows.values() if r.how == how)

    @property
    def method(self) -> str:
        """What the prompts' estimate rests on, in words."""
        parts = [f"{n} {how}" for how in ("cached", "searched", "bounded") if (n := self.count(how))]
        text = "retrieval: " + (", ".join(parts) or "no question")
        if self.count("bounded"):
            text += " (bounded: prompts hold the index's k longest chunks, an upper bound)"
        elif self.rows:
            text += " (prompts exact: the chunks the run would retrieve)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "cached": self.count("cached"), "searched": self.count("searched"),
                "bounded": self.count("bounded"), "embedder": self.embedder,
                "embedding": {"n_requests": self.embed_requests, "n_cached": self.embed_cached,
                              "n_calls": self.embed_calls, "prompt_tokens": self.embed_tokens,
                              "cost_usd": self.embed_cost_usd, "priced": self.embed_priced}}


def _longest(chunks: Sequence[Any], k: int) -> list[Hit]:
    """The ``k`` chunks with the most text (title and body): the longest prompt a retrieval can give."""
    order = sorted(chunks, key=lambda c: -(len(c.title or "") + len(c.text)))[:k]
    return [Hit(c, 0.0, rank) for rank, c in enumerate(order, start=1)]


def plan_retrieval(step: Any, rows: Sequence[Any]) -> RetrievalPlan:
    """The planned retrieval of each row of a :class:`~hyouka.rag.run.RagStep` (rows have ``index`` and
    ``inputs``); calls nothing that costs money."""
    index, k, cache = step.index, step.k, step.executor.cache
    out = RetrievalPlan()
    questions = {row.index: row.inputs or "" for row in rows}
    keys = {i: step.executor.key(RetrieveRequest(q, k)) for i, q in questions.items()}
    stored = cache.get_many(list(keys.values())) if cache is not None else {}
    hits: dict[int, tuple[list[Hit], str]] = {}
    for i, key in keys.items():
        response = stored.get(key)
        if response is not None and response.ok:
            hits[i] = (read_hits(response), "cached")
    todo = [i for i in questions if i not in hits]
    if todo and not index.config.get("reranker"):
        if not index.embeds_queries:
            found = index.search_many([questions[i] for i in todo], k)
            hits.update({i: (h, "searched") for i, h in zip(todo, found, strict=True)})
        else:
            _plan_embeddings(index, step.price, [(i, questions[i]) for i in todo], out, hits, k)
    elif todo and index.embeds_queries:
        _plan_embeddings(index, step.price, [(i, questions[i]) for i in todo], out, hits, k, search=False)
    longest = _longest(index.chunks, k) if len(hits) < len(questions) else []
    for i, question in questions.items():
        found, how = hits.get(i, (longest, "bounded"))
        out.rows[i] = PlannedRetrieval(step.prompt.render(question, found), context_text(found), how)
    return out


def _plan_embeddings(index: Any, price: Any, todo: list[tuple[int, str]], out: RetrievalPlan,
                     hits: dict[int, tuple[list[Hit], str]], k: int, search: bool = True) -> None:
    """Price the query embeddings not cached; search locally those whose vector is (when ``search``)."""
    from hyouka.engine.executor import Executor

    embedder = index.embedder
    executor = Executor(embedder, index.cache)
    prefix = (index.config["embedder"] or {}).get("query_prefix") or ""
    keys = [executor.key(EmbedRequest(prefix + q)) for _, q in todo]
    stored = index.cache.get_many(keys) if index.cache is not None else {}
    count = token_counter(embedder)
    out.embedder = index.config["embedder"]["spec"]
    out.embed_priced = price is not None
    cached: list[tuple[int, str, np.ndarray]] = []
    costs: list[float] = []
    for (i, question), key in zip(todo, keys, strict=True):
        out.embed_requests += 1
        response = stored.get(key)
        if response is not None and response.ok:
            out.embed_cached += 1
            cached.append((i, question, decode_vector(response.text or "")))
            continue
        out.embed_calls += 1
        tokens = count(prefix + question)
        out.embed_tokens += tokens
        one = price.price.call_cost(tokens, 0, None) if price is not None else None
        if one is None:
            out.embed_cost_usd = None
        else:
            costs.append(one)
    if out.embed_cost_usd is not None:
        out.embed_cost_usd = math.fsum(costs)
    if search and cached:
        found, _ = index._search([q for _, q, _ in cached], k, np.stack([v for _, _, v in cached]))
        hits.update({i: (h, "searched") for (i, _, _), h in zip(cached, found, strict=True)})
