"""BM25 retrieval on JSQuAD: hyouka's index (bm25s) against rank_bm25, the BM25 most RAG tutorials use.

The corpus is JSQuAD's 1,145 valid paragraphs and the queries its 4,442 questions; both libraries get
the same MeCab morpheme terms (NFKC, lower-cased), analysed once beforehand, so the times compare
BM25 alone: building the index, then answering every question with its top 20. Recall@5 is the
share of questions whose own paragraph is among the five best. With ``--table`` it also prints the
README's table of recall@1/@5 for BM25 on morphemes and on character bigrams, dense retrieval on the
test server's hashed character n-gram embeddings (through the real ``openai`` client), and hybrid.

    pip install rank-bm25 && python benchmarks/rag_retrieval.py [--table]

Last line: ``speedup=<rank_bm25 wall / hyouka wall> recall_at_5=<hyouka's>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hyouka.rag.analyzers import analyze  # noqa: E402
from hyouka.rag.documents import Document  # noqa: E402
from hyouka.rag.stores import BM25Store  # noqa: E402

K = 20


def jsquad() -> tuple[list[Document], list[tuple[str, str]]]:
    root = Path(os.environ.get("HYOUKA_JGLUE_DIR", ROOT.parent / "shared" / "data" / "jglue-v1.3"))
    data = json.loads((root / "jsquad-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8"))
    docs, questions = [], []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            doc_id = f"p{len(docs)}"
            docs.append(Document(id=doc_id, text=paragraph["context"]))
            questions += [(qa["question"], doc_id) for qa in paragraph["qas"]]
    return docs, questions


def recall(ranked: list[list[str]], gold: list[str], k: int) -> float:
    return sum(g in r[:k] for r, g in zip(ranked, gold, strict=True)) / len(gold)


def bm25_race(docs: list[Document], questions: list[tuple[str, str]]) -> tuple[float, float]:
    from rank_bm25 import BM25Okapi

    started = time.perf_counter()
    corpus = analyze("morphemes", [d.text for d in docs])
    queries = analyze("morphemes", [q for q, _ in questions])
    print(f"morphemes of {len(docs)} paragraphs and {len(queries)} questions: {time.perf_counter() - started:.2f} s "
          "(once, shared by both)")
    gold = [g for _, g in questions]
    ids = np.array([d.id for d in docs])

    t0 = time.perf_counter()
    ours = BM25Store.build(corpus)
    t1 = time.perf_counter()
    positions, _ = ours.search(queries, K)
    t2 = time.perf_counter()
    ours_ranked = [ids[row].tolist() for row in positions]

    peer = BM25Okapi(corpus)
    t3 = time.perf_counter()
    peer_ranked = []
    for q in queries:
        scores = peer.get_scores(q)
        peer_ranked.append(ids[np.argsort(-scores, kind="stable")[:K]].tolist())
    t4 = time.perf_counter()

    ours_wall, peer_wall = t2 - t0, t4 - t2
    for name, build, search, ranked in (("hyouka (bm25s)", t1 - t0, t2 - t1, ours_ranked),
                                        ("rank_bm25", t3 - t2, t4 - t3, peer_ranked)):
        print(f"{name:15s} build {build:7.3f} s  {len(queries) / search:9.0f} queries/s  "
              f"recall@5 {recall(ranked, gold, 5):.4f}")
    return peer_wall / ours_wall, recall(ours_ranked, gold, 5)


def table(docs: list[Document], questions: list[tuple[str, str]]) -> None:
    from hyouka.rag.index import Index
    from hyouka.testing.openai_server import serve_openai

    queries, gold = [q for q, _ in questions], [g for _, g in questions]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, serve_openai() as url:
        common = {"root": tmp, "unit": "characters", "chunk_size": 4000, "chunk_overlap": 0, "cache": False}
        dense = {"embedder": "openai:hashed-char-ngrams", "embedder_options": {"base_url": url}}
        for label, options in (("BM25, morphemes", {"retriever": "bm25", "analyzer": "morphemes"}),
                               ("BM25, character bigrams", {"retriever": "bm25", "analyzer": "bigrams"}),
                               ("dense (test server's hashed character 1-2-gram embeddings)",
                                {"retriever": "dense", **dense}),
                               ("hybrid (BM25 morphemes + that dense, RRF k=60)", {"retriever": "hybrid", **dense})):
            index = Index.build(docs, "jsquad", **common, **options)
            ranked = [[h.chunk.doc_id for h in hits] for hits in index.search_many(queries, 5)]
            rows.append((label, recall(ranked, gold, 1), recall(ranked, gold, 5)))
    print("\n| retriever | recall@1 | recall@5 |\n| --- | --- | --- |")
    for label, r1, r5 in rows:
        print(f"| {label} | {r1:.3f} | {r5:.3f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="also print recall@1/@5 of every retriever")
    args = parser.parse_args()
    docs, questions = jsquad()
    if args.table:
        table(docs, questions)
    speedup, recall_at_5 = bm25_race(docs, questions)
    print(f"speedup={speedup:.1f} recall_at_5={recall_at_5:.4f}")


if __name__ == "__main__":
    main()
