"""Retrieval-augmented generation, evaluated end to end: documents, chunks, indexes, retrieval, the RAG prompt.

``Index.build(folder, name)`` chunks and indexes documents (BM25 on morphemes via bm25s, dense
vectors in FAISS, or both fused); ``Index.open(name).search(query, k)`` retrieves;
``Index.evaluate(queries, k=20)`` scores retrieval alone against gold ids, no model; and
``hyouka.evaluate(model, data, index=name, k=4)`` runs the whole loop: retrieve, prompt, answer,
judge, with every retrieval, embedding and model call cached and accounted by the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyouka.rag.chunking import Chunk, Chunker
    from hyouka.rag.documents import Document, load_documents
    from hyouka.rag.evaluate import RetrievalEvaluation, evaluate_retrieval
    from hyouka.rag.index import BuildReport, Hit, Index, list_indexes
    from hyouka.rag.prompt import RagPrompt

__all__ = ["BuildReport", "Chunk", "Chunker", "Document", "Hit", "Index", "RagPrompt", "RetrievalEvaluation",
           "evaluate_retrieval", "list_indexes", "load_documents"]

_LAZY = {
    "Chunk": "hyouka.rag.chunking",
    "Chunker": "hyouka.rag.chunking",
    "Document": "hyouka.rag.documents",
    "load_documents": "hyouka.rag.documents",
    "RetrievalEvaluation": "hyouka.rag.evaluate",
    "evaluate_retrieval": "hyouka.rag.evaluate",
    "BuildReport": "hyouka.rag.index",
    "Hit": "hyouka.rag.index",
    "Index": "hyouka.rag.index",
    "list_indexes": "hyouka.rag.index",
    "RagPrompt": "hyouka.rag.prompt",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyouka.rag' has no attribute {name!r}")
