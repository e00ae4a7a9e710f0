"""The retrieval step of a RAG evaluation: retrieve for each question, build its prompt, score the retrieval.

:func:`hyouka.evaluate` with ``index=`` hands its rows to a :class:`RagStep`: each question's
``k`` chunks come through the engine's executor (cached by index identity and hash, query and
k; counted and timed like model calls), the RAG prompt is rendered from them, and the chunks
become the context that judge metrics (faithfulness, relevance, context_relevance,
context_recall) read. Each sample stores, in ``details["retrieval"]``, the chunks with their ids,
documents, spans and scores, the retrieval's latency, tokens, cost and status, and, when the
data names relevant documents, the ids scored by the retrieval metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyouka.engine.accounting import response_cost, run_accounting
from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.metrics import retrieval as retrieval_metrics
from hyouka.models.base import Response
from hyouka.pricing.table import PriceTable, load_prices
from hyouka.rag.calls import RetrieveRequest
from hyouka.rag.index import Hit, Index
from hyouka.rag.prompt import RagPrompt, context_text, load_prompt
from hyouka.rag.retriever import read_hits

__all__ = ["DEFAULT_K", "RELEVANT_NAMES", "RagStep", "Retrieved", "split_retrieval_metrics"]

DEFAULT_K = 4
RELEVANT_NAMES = ("relevant_doc_ids", "relevant_ids", "gold_doc_ids", "gold_doc_id", "source_doc_ids",
                  "relevant_docs", "doc_ids")
DEFAULT_RETRIEVAL_METRICS = ("hit_at_k", "recall_at_k", "mrr", "ndcg_at_k")


def split_retrieval_metrics(metrics: Sequence[Any] | str | None, k: int) -> tuple[list[Any] | None, list[str]]:
    """``metrics`` without its retrieval metrics, and those (canonical: ``recall_at_k`` → ``recall_at_4``)."""
    if metrics is None:
        return None, []
    items = [m.strip() for m in metrics.split(",") if m.strip()] if isinstance(metrics, str) else list(metrics)
    rest = [m for m in items if not (isinstance(m, str) and retrieval_metrics.is_retrieval_metric(m))]
    found = [retrieval_metrics.resolve(m, k) for m in items if isinstance(m, str) and m not in rest]
    return rest, list(dict.fromkeys(found))


def _ids(value: Any) -> list[str] | None:
    """Relevant ids from a data cell: a list, a JSON list in text, or one id."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return [text]
        else:
            return [text]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


@dataclass
class Retrieved:
    """One question's retrieval: the hits, the call's response, the prompt and the judges' context."""

    hits: list[Hit]
    response: Response
    prompt: str
    context: str
    relevant: list[str] | None = None
    cost_usd: float | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.response.ok

    def ranked_ids(self) -> list[str]:
        """What the retrieval metrics rank: each hit's chunk id where the relevant ids name chunks, else its
        document id."""
        gold = set(self.relevant or ())
        return [h.chunk.id if h.chunk.id in gold else h.chunk.doc_id for h in self.hits]

    def detail(self, k: int) -> dict[str, Any]:
        r = self.response
        return {
            "k": k,
            "status": "ok" if r.ok else (r.error_type or "api_error"),
            "error": r.error,
            "chunk_ids": [h.chunk.id for h in self.hits],
            "doc_ids": [h.chunk.doc_id for h in self.hits],
            "chunks": [h.to_dict() for h in self.hits],
            "relevant": self.relevant,
            "ranked_ids": self.ranked_ids() if self.relevant is not None else None,
            "latency_s": r.latency_s,
            "prompt_tokens": r.prompt_tokens,
            "cached": r.cached,
            "cost_usd": self.cost_usd,
            "response": {k_: v for k_, v in r.to_dict(compact=True).items() if k_ != "text"},
        }


class RagStep:
    """Retrieval for an evaluation: ``index`` (an :class:`Index` or its name), ``k`` chunks per question,
    the RAG ``prompt`` template (built-in ``rag_qa`` in ``language``), and the data column naming each
    question's ``relevant`` document (or chunk) ids, found by its usual names when not given."""

    def __init__(
        self,
        index: Index | str | Path,
        k: int | None = None,
        *,
        prompt: str | Path | RagPrompt | None = None,
        language: str = "ja",
        cache: ResponseCache | None = None,
        relevant: str | None = None,
        columns: Sequence[str] = (),
        prices: PriceTable | str | Path | None = None,
        root: str | Path | None = None,
    ) -> None:
        self.k = DEFAULT_K if k is None else int(k)
        if self.k < 1:
            raise ValueError(f"k (chunks retrieved per question) must be at least 1, got {k}")
        self.index = index if isinstance(index, Index) else Index.open(index, root=root, cache=cache or False)
        if isinstance(index, Index) and index.cache is None:
            index.cache = cache
        self.prompt = prompt if isinstance(prompt, RagPrompt) else load_prompt(prompt, language)
        if relevant is not None and columns and relevant not in columns:
            raise ValueError(f"relevant={relevant!r} is not a column of the data; columns: {', '.join(columns)}")
        self.relevant_column = relevant or next((c for c in RELEVANT_NAMES if c in columns), None)
        self.executor = Executor(self.index.retriever(), cache)  # type: ignore[arg-type]
        embedder = self.index.config.get("embedder")
        self.price = None
        if embedder:
            self.price = load_prices(prices).lookup(embedder["spec"], embedder.get("identity") or {})

    def describe(self) -> dict[str, Any]:
        """What the run records of its retrieval (part of its configuration hash)."""
        return {"index": self.index.describe(), "k": self.k, "prompt": self.prompt.describe(),
                "relevant_column": self.relevant_column}

    def default_metrics(self) -> list[str]:
        """Retrieval metrics to report when none are named: only where the data names relevant ids."""
        if self.relevant_column is None:
            return []
        return [retrieval_metrics.resolve(m, self.k) for m in DEFAULT_RETRIEVAL_METRICS]

    def retrieve(self, rows: Sequence[Any]) -> dict[int, Retrieved]:
        """Each row's retrieval (rows have ``index``, ``inputs`` and ``fields``), by row index."""
        requests = [RetrieveRequest(row.inputs or "", self.k) for row in rows]
        out: dict[int, Retrieved] = {}
        for position, response in self.executor.execute(requests):
            row = rows[position]
            hits = read_hits(response) if response.ok else []
            relevant = _ids(row.fields.get(self.relevant_column)) if self.relevant_column else None
            prompt = self.prompt.render(row.inputs or "", hits) if response.ok else ""
            cost = response_cost(self.price.price, response) if self.price else None
            out[row.index] = Retrieved(hits, response, prompt, context_text(hits), relevant, cost)
        self.executor.flush()
        return out

    def annotate(self, record: dict[str, Any], retrieved: Retrieved, metrics: Sequence[str]) -> dict[str, Any]:
        """``record`` with its RAG prompt, the retrieval's detail and the retrieval metrics' scores."""
        record["prompt"] = retrieved.prompt
        record.setdefault("details", {})["retrieval"] = retrieved.detail(self.k)
        if retrieved.relevant is not None and retrieved.ok:
            ranked = retrieved.ranked_ids()
            for name in metrics:
                func = retrieval_metrics.score_function(name)
                assert func is not None
                record["metrics"][name] = func(ranked, retrieved.relevant)
        if not retrieved.ok:
            record["status"] = retrieved.response.error_type or "api_error"
            record["error"] = f"retrieval failed: {retrieved.response.error}"
        return record

    def aggregates(self, metrics: Sequence[str], samples: Sequence[Mapping[str, Any]], n_total: int,
                   seed: int = 0) -> list[dict[str, Any]]:
        """Store-ready aggregates of the retrieval metrics, over the samples whose data names relevant ids."""
        from hyouka.metrics.registry import aggregate

        rows = [((s.get("details") or {}).get("retrieval") or {}) for s in samples]
        scored = [r for r in rows if r.get("relevant") is not None and r.get("status") == "ok"]
        out = []
        for name in metrics:
            agg = aggregate(name, [r["ranked_ids"] for r in scored], [r["relevant"] for r in scored],
                            n_total=n_total, seed=seed).to_dict()
            missing = sum(1 for r in rows if r.get("relevant") is None)
            if missing:
                agg["note"] = "; ".join(filter(None, [agg.get("note"), f"{missing} rows name no relevant ids"]))
            out.append(agg)
        return out

    def accounting(self, samples: Sequence[Mapping[str, Any]], duration_s: float | None = None) -> dict[str, Any]:
        """Latency, embedding tokens and cost of the run's retrievals (priced at the embedder's rate)."""
        calls = [{"responses": [((s.get("details") or {}).get("retrieval") or {}).get("response") or {}]}
                 for s in samples if (s.get("details") or {}).get("retrieval")]
        out = run_accounting(calls, self.price, duration_s=duration_s)
        out["calls"] = {"requested": self.executor.stats.requested, "cache_hits": self.executor.stats.cache_hits,
                        "model_calls": self.executor.stats.model_calls, "failures": self.executor.stats.failures}
        return out
