"""Retrieval on real Japanese data: JSQuAD's valid paragraphs are the corpus and its 4,442 questions the queries.

BM25 on morphemes gives the recall and MRR of bm25s called directly on the same terms; morphemes beat
whitespace terms (a Japanese sentence is one whitespace token); dense retrieval through the test
server's ``/v1/embeddings`` (the real ``openai`` client) equals exact cosine search in numpy over the
server's vectors; hybrid fuses the two ranks as reciprocal-rank fusion defines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hyouka.rag.analyzers import morphemes, whitespace
from hyouka.rag.documents import Document
from hyouka.rag.evaluate import evaluate_retrieval
from hyouka.rag.index import Index, rrf
from hyouka.testing.openai_server import ServerStats, hashed_embedding, serve_openai

bm25s = pytest.importorskip("bm25s")
pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def jsquad(jglue_dir: Path) -> tuple[list[Document], list[tuple[str, str]]]:
    data = json.loads((jglue_dir / "jsquad-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8"))
    docs: list[Document] = []
    questions: list[tuple[str, str]] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            doc_id = f"p{len(docs)}"
            docs.append(Document(id=doc_id, text=paragraph["context"]))  # "title [SEP] text", as JSQuAD gives it
            questions += [(qa["question"], doc_id) for qa in paragraph["qas"]]
    assert len(docs) == 1145 and len(questions) == 4442
    return docs, questions


def _recall_and_mrr(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    out = {f"recall@{k}": sum(g in r[:k] for r, g in zip(ranked, gold, strict=True)) / len(gold) for k in (1, 5, 20)}
    out["mrr"] = sum(1 / (r.index(g) + 1) if g in r else 0.0 for r, g in zip(ranked, gold, strict=True)) / len(gold)
    return out


def _bm25s_direct(docs, queries: list[str], analyzer, k: int) -> list[list[str]]:
    """bm25s itself over the texts (documents, or an index's chunks), ranked by their document ids."""
    model = bm25s.BM25()  # bm25s's defaults (Lucene BM25, k1=1.5, b=0.75), as hyouka's index
    model.index([analyzer(d.text) for d in docs], show_progress=False)
    positions, _ = model.retrieve([analyzer(q) for q in queries], k=k, show_progress=False)
    return [[getattr(docs[int(p)], "doc_id", None) or docs[int(p)].id for p in row] for row in positions]


@pytest.fixture(scope="module")
def bm25_index(jsquad, tmp_path_factory: pytest.TempPathFactory) -> Index:
    """The JSQuAD paragraphs in a BM25 index on morphemes, 512-morpheme chunks."""
    return Index.build(jsquad[0], "jsquad", root=tmp_path_factory.mktemp("indexes"), chunk_size=512,
                       chunk_overlap=64, unit="tokens", retriever="bm25", analyzer="morphemes", cache=False)


def test_bm25_on_morphemes_equals_bm25s_called_directly(jsquad, bm25_index: Index, tmp_path: Path) -> None:
    docs, questions = jsquad
    index = bm25_index
    assert len(docs) <= index.n_chunks < len(docs) + 5  # nearly every paragraph is under 512 morphemes
    queries, gold = [q for q, _ in questions], [g for _, g in questions]
    ours = _recall_and_mrr([[h.chunk.doc_id for h in hits] for hits in index.search_many(queries, 20)], gold)
    direct = _recall_and_mrr(_bm25s_direct(index.chunks, queries, morphemes, 20), gold)
    assert ours == direct
    assert ours["recall@1"] > 0.8 and ours["recall@5"] > 0.9  # JSQuAD questions reuse their paragraph's words
    # reopened from disk, it answers the same
    again = Index.open(index.path, cache=False)
    assert [h.chunk.id for h in again.search(queries[0], 5)] == [h.chunk.id for h in index.search(queries[0], 5)]

    spaced = Index.build(docs, "jsquad-ws", root=tmp_path, retriever="bm25", analyzer="whitespace", cache=False)
    spaced_ranked = [[h.chunk.doc_id for h in hits] for hits in spaced.search_many(queries, 20)]
    ws = _recall_and_mrr(spaced_ranked, gold)
    assert ws == _recall_and_mrr(_bm25s_direct(spaced.chunks, queries, whitespace, 20), gold)
    assert ours["recall@5"] > ws["recall@5"] + 0.5, (ours, ws)  # one token per Japanese sentence finds little


def test_dense_retrieval_through_the_test_servers_embeddings(jsquad, tmp_path: Path, cache) -> None:
    docs, questions = jsquad
    docs = docs[:300]
    kept = {d.id for d in docs}
    questions = [(q, g) for q, g in questions if g in kept]
    queries, gold = [q for q, _ in questions], [g for _, g in questions]
    stats = ServerStats()
    with serve_openai(stats=stats) as url:
        options = {"base_url": url}
        dense = Index.build(docs, "jsquad-dense", root=tmp_path, retriever="dense", unit="characters",
                            chunk_size=2000, chunk_overlap=0, embedder="openai:text-embedding-3-small",
                            embedder_options=options, cache=cache)
        assert dense.last_build.chunks_embedded == len(docs)
        assert stats.by_path["embeddings"] == -(-len(docs) // 64)  # batches of 64 texts per request
        ours = dense.search_many(queries, 20)
        hybrid = Index.build(docs, "jsquad-hybrid", root=tmp_path, retriever="hybrid", unit="characters",
                             chunk_size=2000, chunk_overlap=0, embedder="openai:text-embedding-3-small",
                             embedder_options=options, cache=cache)
        assert hybrid.last_build.embedding_cache_hits == len(docs)  # cached by (embedder identity, text)
        fused = hybrid.search_many(queries[:50], 5)
    # the reference: exact cosine in numpy over the server's own vectors
    matrix = np.array([hashed_embedding(d.text) for d in docs])
    qv = np.array([hashed_embedding(q) for q in queries])
    order = np.argsort(-(qv @ matrix.T), axis=1, kind="stable")[:, :20]
    expected = [[docs[i].id for i in row] for row in order]
    got = [[h.chunk.doc_id for h in hits] for hits in ours]
    assert _recall_and_mrr(got, gold) == _recall_and_mrr(expected, gold)
    assert _recall_and_mrr(got, gold)["recall@5"] > 0.7
    # hybrid: reciprocal-rank fusion of the BM25 ranking (bm25s) and the dense ranking, hand-fused here
    bm = _bm25s_direct(docs, queries[:50], morphemes, 100)
    dense_full = np.argsort(-(qv[:50] @ matrix.T), axis=1, kind="stable")[:, :100]
    for q in range(50):
        scores: dict[str, float] = {}
        for ranking in (bm[q], [docs[i].id for i in dense_full[q]]):
            for rank, doc_id in enumerate(ranking, start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1 / (60 + rank)
        top = sorted(scores.values(), reverse=True)[:5]
        assert [h.score for h in fused[q]] == pytest.approx(top)


def test_rrf_orders_by_summed_reciprocal_ranks() -> None:
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=60)
    assert [item for item, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_a_moved_embedding_server_is_another_model_as_for_chat_models(jsquad, tmp_path: Path, cache) -> None:
    from hyouka.engine.executor import Executor
    from hyouka.models.openai_api import OpenAIModel
    from hyouka.rag.calls import RetrieveRequest
    from hyouka.rag.embedders import load_embedder

    docs, questions = jsquad
    docs = docs[:40]
    queries = [q for q, g in questions if g in {d.id for d in docs}][:10]
    built, moved = ServerStats(), ServerStats()

    def retrieve(index: Index) -> tuple[list[str], int]:
        executor = Executor(index.retriever(), cache)
        texts = [r.text or "" for _, r in sorted(executor.execute([RetrieveRequest(q, 4) for q in queries]))]
        executor.flush()
        return texts, executor.stats.model_calls

    with serve_openai(stats=built) as url, serve_openai(stats=moved) as other:
        # the project's rule for openai: models: the public endpoint is part of the identity (a name served
        # elsewhere may be another model), credentials in the URL never are; embedders follow it
        for base in (url, other):
            chat = OpenAIModel("emb", base_url=f"{base}?api-key=secret").identity()
            embedder = load_embedder("openai:emb", base_url=f"{base}?api-key=secret").identity()
            assert embedder["base_url"] == chat["base_url"] == base.rstrip("/")
        Index.build(docs, "moved", root=tmp_path, retriever="dense", unit="characters", chunk_size=2000,
                    chunk_overlap=0, embedder="openai:emb", embedder_options={"base_url": url}, cache=cache)
        first, calls = retrieve(Index.open("moved", root=tmp_path, cache=cache))
        assert calls == len(queries)
        # the same server, named or not: the same retrievals, from the cache
        same, calls = retrieve(Index.open("moved", root=tmp_path, cache=cache, embedder_options={"base_url": url}))
        assert calls == 0 and same == first
        # another server: its own query embeddings and retrievals, as a chat model there gets its own answers
        there = Index.open("moved", root=tmp_path, cache=cache, embedder_options={"base_url": other})
        assert there.identity()["query_embedder"]["base_url"] == other.rstrip("/")
        again, calls = retrieve(there)
        assert calls == len(queries) and moved.by_path["embeddings"] == 1
        assert again == first  # the same model behind both: the same chunks
    assert built.by_path["embeddings"] == 2  # the corpus, and the first queries; nothing again


@pytest.mark.filterwarnings("ignore:``mlflow.metrics.ndcg_at_k`` is deprecated:FutureWarning")
def test_retrieval_alone_scored_against_gold_ids_equals_bm25s_and_mlflow(jsquad, bm25_index: Index,
                                                                        tmp_path: Path) -> None:
    import pandas as pd

    from hyouka.metrics.bootstrap import bootstrap

    mlflow_metrics = pytest.importorskip("mlflow.metrics")
    _, questions = jsquad
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "relevant_doc_ids": [g]}, ensure_ascii=False)
                               + "\n" for i, (q, g) in enumerate(questions)), encoding="utf-8")
    result = bm25_index.evaluate(queries, k=20, cache=tmp_path / "cache.sqlite")
    assert list(result.aggregates) == ["hit_at_20", "recall_at_1", "recall_at_5", "recall_at_20", "mrr", "ndcg_at_20"]
    # the reference: bm25s called on the same chunks and terms, scored by hand, nDCG by MLflow's own metric
    gold = [g for _, g in questions]
    direct = _bm25s_direct(bm25_index.chunks, [q for q, _ in questions], morphemes, 20)
    by_hand = _recall_and_mrr(direct, gold)
    ndcg = mlflow_metrics.ndcg_at_k(20).eval_fn(pd.Series(direct), pd.Series([[g] for g in gold])).scores
    expected = {"recall_at_1": by_hand["recall@1"], "recall_at_5": by_hand["recall@5"],
                "recall_at_20": by_hand["recall@20"], "hit_at_20": by_hand["recall@20"], "mrr": by_hand["mrr"],
                "ndcg_at_20": sum(ndcg) / len(ndcg)}
    assert result.metrics == pytest.approx(expected, abs=1e-12)
    assert [row["scores"]["ndcg_at_20"] for row in result.rows] == pytest.approx(ndcg, abs=1e-9)
    for name, agg in result.aggregates.items():
        assert agg["n_scored"] == agg["n_total"] == len(questions)
        scores = np.array([row["scores"][name] for row in result.rows])
        # the interval is metrics/bootstrap.py's over the per-query scores, close to the normal one at n = 4,442
        boot = bootstrap(lambda x: np.mean(x, axis=-1), scores, seed=0, vectorized=True)
        assert (agg["ci_low"], agg["ci_high"]) == pytest.approx((boot.ci_low, boot.ci_high))
        half = 1.96 * scores.std(ddof=1) / np.sqrt(len(scores))
        assert agg["ci_low"] == pytest.approx(agg["value"] - half, abs=0.004)
        assert agg["ci_high"] == pytest.approx(agg["value"] + half, abs=0.004)
    # retrievals are engine calls: a second evaluation takes them from the cache
    again = bm25_index.evaluate(queries, k=20, cache=tmp_path / "cache.sqlite")
    assert again.calls["calls"]["model_calls"] == 0 and again.metrics == result.metrics
    # gold chunk ids count as chunks; a query without gold ids is not scored (said in the note)
    first = bm25_index.search(questions[0][0], 5)
    rows = [{"query": questions[0][0], "gold": json.dumps([first[1].chunk.id])}, {"query": "梅雨", "gold": ""}]
    mixed = evaluate_retrieval(bm25_index, rows, 5, relevant="gold", metrics="mrr,recall@5", cache=False)
    assert mixed.metrics == {"mrr": 0.5, "recall_at_5": 1.0}
    assert mixed.aggregates["mrr"]["n_scored"] == 1 and "1 rows name no relevant ids" in mixed.aggregates["mrr"]["note"]
    with pytest.raises(ValueError, match="deeper than the 5 chunks"):
        evaluate_retrieval(bm25_index, rows, 5, relevant="gold", metrics="recall@20", cache=False)
