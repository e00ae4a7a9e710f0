"""The two searchable structures of an index: BM25 (``bm25s``) and vectors (FAISS).

BM25 is ``bm25s`` on pre-analysed terms (see :mod:`hyouka.rag.analyzers`): its sparse
score matrix, saved and loaded with bm25s's own files. Vectors are a FAISS ``IndexFlatIP`` of
normalised embeddings, i.e. exact cosine search: FAISS because it is the embedded vector index
the field uses, searches a batch of queries in one BLAS call, reads and writes one file, and
gives back the stored vectors (``reconstruct_n``) so a rebuild embeds only new chunks; an
exact flat index because retrieval evaluation must not lose recall to approximation at the
corpus sizes evaluated (up to a few hundred thousand chunks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BM25Store", "VectorStore"]


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ImportError("dense retrieval needs faiss-cpu: pip install 'hyouka[rag]'") from None
    return faiss


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise ImportError("BM25 retrieval needs bm25s: pip install 'hyouka[rag]'") from None
    return bm25s


class BM25Store:
    """``bm25s.BM25`` over terms; :meth:`search` gives chunk positions and scores, best first."""

    def __init__(self, model: Any, n: int) -> None:
        self.model = model
        self.n = n

    @classmethod
    def build(cls, terms: Sequence[list[str]], *, k1: float = 1.5, b: float = 0.75, method: str = "lucene"
              ) -> BM25Store:
        model = _bm25s().BM25(k1=k1, b=b, method=method)
        model.index(list(terms), show_progress=False)
        return cls(model, len(terms))

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, n: int) -> BM25Store:
        return cls(_bm25s().BM25.load(str(folder), show_progress=False), n)

    def search(self, queries: Sequence[list[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n)
        docs, scores = self.model.retrieve([list(q) for q in queries], k=k, show_progress=False, n_threads=0)
        return np.asarray(docs), np.asarray(scores)


class VectorStore:
    """Normalised vectors in a FAISS ``IndexFlatIP``: exact cosine similarity."""

    def __init__(self, index: Any) -> None:
        self.index = index

    @classmethod
    def build(cls, vectors: np.ndarray) -> VectorStore:
        faiss = _faiss()
        matrix = normalized(vectors)
        index = faiss.IndexFlatIP(matrix.shape[1])
        index.add(matrix)
        return cls(index)

    @property
    def n(self) -> int:
        return int(self.index.ntotal)

    def vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.n) if self.n else np.zeros((0, self.index.d), dtype=np.float32)

    def save(self, path: Path) -> None:
        _faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        return cls(_faiss().read_index(str(path)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, positions = self.index.search(normalized(queries), min(k, self.n))
        return positions, scores


def normalized(vectors: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)
