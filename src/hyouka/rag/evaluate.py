"""Retrieval alone, evaluated against gold ids: ``hyouka index eval NAME queries.jsonl -k 20``, no model.

Each query row holds a question and the ids of its relevant documents (or chunks): a list, a JSON
list in text, or one id, in a column named as RAG runs find it (``relevant_doc_ids``, ``gold_doc_ids``…,
or ``relevant=``). The queries are retrieved as a RAG run retrieves them (the engine's executor: cached
by index hash, question and k; embeddings cached by embedder identity and text, so a second evaluation,
or one after a kill, embeds nothing twice) and scored by the retrieval metrics of
:mod:`hyouka.metrics.retrieval` with their 95% bootstrap intervals (:mod:`hyouka.metrics.bootstrap`),
where a hit counts as relevant when its chunk id, else its document id, is among the gold ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyouka.engine.cache import ResponseCache
from hyouka.metrics import retrieval as retrieval_metrics
from hyouka.rag.index import Index, _open_cache

__all__ = ["QUESTION_NAMES", "RetrievalEvaluation", "default_metrics", "evaluate_retrieval"]

QUESTION_NAMES = ("question", "query", "inputs", "input", "text")
ID_NAMES = ("id", "qid", "query_id", "question_id")
RECALL_AT = (1, 5, 20)


@dataclass(frozen=True)
class _Row:
    """What :meth:`~hyouka.rag.run.RagStep.retrieve` reads of a query."""

    index: int
    id: str
    inputs: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetrievalEvaluation:
    """Each metric's aggregate (value, 95% interval, ``n_scored``/``n_total``), each query's scores, the calls."""

    index: str
    index_hash: str
    k: int
    aggregates: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]]
    calls: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float | None]:
        return {name: agg["value"] for name, agg in self.aggregates.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_metrics(k: int) -> list[str]:
    """``hit_at_k``, ``recall_at_1/5/20`` (those within ``k``, and ``k``), ``mrr``, ``ndcg_at_k``."""
    at = sorted({n for n in RECALL_AT if n <= k} | {k})
    return [f"hit_at_{k}", *(f"recall_at_{n}" for n in at), "mrr", f"ndcg_at_{k}"]


def _metric_names(metrics: Sequence[str] | str | None, k: int) -> list[str]:
    if metrics is None:
        return default_metrics(k)
    items = [m.strip() for m in metrics.split(",") if m.strip()] if isinstance(metrics, str) else list(metrics)
    names = []
    for item in items:
        if not retrieval_metrics.is_retrieval_metric(item):
            raise ValueError(f"{item!r} is not a retrieval metric; use hit_at_K, recall_at_K, precision_at_K, "
                             "ndcg_at_K, mrr (or recall@5, ndcg_at_k)")
        name = retrieval_metrics.resolve(item, k)
        depth = name.rpartition("_at_")[2]
        if depth.isdigit() and int(depth) > k:
            raise ValueError(f"{name} looks deeper than the {k} chunks retrieved per query: give -k {depth} or more")
        names.append(name)
    return list(dict.fromkeys(names))


def _records(queries: str | Path | Sequence[Mapping[str, Any]] | Any) -> tuple[list[dict[str, Any]], str]:
    """The query rows (a file, a DataFrame or records) and where they came from."""
    if isinstance(queries, (str, Path)):
        from hyouka.rag.documents import read_table

        path = Path(queries).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"queries file {path} not found")
        return read_table(path).to_dict(orient="records"), str(path)
    if hasattr(queries, "to_dict"):  # a pandas DataFrame
        return queries.to_dict(orient="records"), "DataFrame"
    return [dict(r) for r in queries], "records"


def _column(columns: Sequence[str], given: str | None, names: Sequence[str], role: str, where: str) -> str | None:
    if given is not None:
        if given not in columns:
            raise ValueError(f"{where}: no {role} column {given!r}; columns: {', '.join(columns)}")
        return given
    return next((c for c in names if c in columns), None)


def evaluate_retrieval(
    index: Index | str | Path,
    queries: str | Path | Sequence[Mapping[str, Any]] | Any,
    k: int = 20,
    *,
    metrics: Sequence[str] | str | None = None,
    question: str | None = None,
    relevant: str | None = None,
    id_column: str | None = None,
    limit: int | None = None,
    root: str | Path | None = None,
    cache: ResponseCache | str | Path | bool = True,
    embedder_options: dict[str, Any] | None = None,
    prices: Any = None,
    seed: int = 0,
) -> RetrievalEvaluation:
    """Retrieve ``k`` chunks for each query of ``queries`` from ``index`` and score them against the query's gold
    ids with ``metrics`` (default :func:`default_metrics`); calls no model."""
    from hyouka.rag.run import RELEVANT_NAMES, RagStep

    if k < 1:
        raise ValueError(f"k (chunks retrieved per query) must be at least 1, got {k}")
    names = _metric_names(metrics, k)
    records, where = _records(queries)
    if limit is not None:
        records = records[:limit]
    if not records:
        raise ValueError(f"{where}: no queries")
    columns = list(dict.fromkeys(str(c) for r in records for c in r))
    q_col = _column(columns, question, QUESTION_NAMES, "question", where)
    if q_col is None:
        raise ValueError(f"{where}: no question column (looked for {', '.join(QUESTION_NAMES)}); name it with "
                         f"--question-column; columns: {', '.join(columns)}")
    gold_col = _column(columns, relevant, RELEVANT_NAMES, "relevant ids", where)
    if gold_col is None:
        raise ValueError(f"{where}: no column of relevant ids (looked for {', '.join(RELEVANT_NAMES)}); name it "
                         f"with --relevant-column; columns: {', '.join(columns)}")
    id_col = _column(columns, id_column, ID_NAMES, "id", where)
    rows = [_Row(i, str(r[id_col]) if id_col else str(i), str(r.get(q_col) or ""), r) for i, r in enumerate(records)]
    the_cache = _open_cache(cache)
    opened = index if isinstance(index, Index) else Index.open(index, root=root, cache=the_cache or False,
                                                               embedder_options=embedder_options)
    step = RagStep(opened, k, cache=the_cache, relevant=gold_col, columns=columns, prices=prices)
    retrieved = step.retrieve(rows)
    samples = [{"details": {"retrieval": retrieved[row.index].detail(k)}} for row in rows]
    aggregates = {a["metric"]: a for a in step.aggregates(names, samples, len(rows), seed)}
    scores = {name: retrieval_metrics.score_function(name) for name in names}
    out_rows = []
    for row, sample in zip(rows, samples, strict=True):
        detail = sample["details"]["retrieval"]
        scored = detail["relevant"] is not None and detail["status"] == "ok"
        out_rows.append({
            "id": row.id, "question": row.inputs, "relevant": detail["relevant"], "status": detail["status"],
            "error": detail["error"], "chunk_ids": detail["chunk_ids"], "doc_ids": detail["doc_ids"],
            "scores": {n: f(detail["ranked_ids"], detail["relevant"]) for n, f in scores.items() if f and scored},
        })
    return RetrievalEvaluation(opened.name, opened.hash, k, aggregates, out_rows, step.accounting(samples))

