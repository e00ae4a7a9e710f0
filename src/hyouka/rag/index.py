"""A named retrieval index on disk: chunks, BM25 terms and scores, vectors, and a manifest.

``Index.build`` loads documents, chunks them, and indexes the chunks for ``bm25`` (bm25s on
morphemes, character bigrams or whitespace terms), ``dense`` (an embedder's vectors in FAISS) or
``hybrid`` (both, fused by reciprocal rank). The folder (``~/.hyouka/indexes/<name>``, beside the
default store; ``HYOUKA_INDEX_DIR`` moves it) holds ``manifest.json`` (the configuration, the
index hash and each document's content hash), ``chunks.jsonl``, ``terms.jsonl``, bm25s's files
and ``vectors.faiss``. Building again over the same name re-chunks only documents whose content
changed and embeds only chunks it has no vector for; embeddings go through the engine's
executor, so they are cached by (embedder identity, text) in the response cache as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.jsonio import canonical_bytes
from hyouka.models.base import Response
from hyouka.rag.analyzers import analyze, analyzer_info
from hyouka.rag.calls import EmbedRequest, decode_vector
from hyouka.rag.chunking import Chunk, Chunker
from hyouka.rag.documents import Document, load_documents
from hyouka.rag.embedders import Embedder, load_embedder
from hyouka.rag.stores import BM25Store, VectorStore

if TYPE_CHECKING:
    from hyouka.rag.retriever import IndexRetriever

__all__ = ["RETRIEVERS", "BuildReport", "Hit", "Index", "RagIndexError", "index_root", "list_indexes"]

RETRIEVERS = ("bm25", "dense", "hybrid")
FORMAT = 1
RRF_K = 60  # reciprocal-rank fusion's constant (Cormack et al., 2009)
FUSION_DEPTH = 100  # candidates each retriever gives the fusion
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RagIndexError(LookupError):
    """An index that does not exist, or cannot be built or read as asked."""


def index_root(root: str | Path | None = None) -> Path:
    """The folder of named indexes: ``root``, else ``HYOUKA_INDEX_DIR``, else ``indexes/`` beside the default store."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("HYOUKA_INDEX_DIR"):
        return Path(os.environ["HYOUKA_INDEX_DIR"]).expanduser()
    from hyouka.config import home_dir

    return home_dir() / "indexes"


def list_indexes(root: str | Path | None = None) -> list[dict[str, Any]]:
    """The manifests of the indexes under ``root`` (see :func:`index_root`), by name."""
    folder = index_root(root)
    out = []
    for manifest in sorted(folder.glob("*/manifest.json")) if folder.is_dir() else []:
        try:
            out.append({**json.loads(manifest.read_text(encoding="utf-8")), "path": str(manifest.parent)})
        except (OSError, ValueError):
            continue
    return out


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: 1-based ``rank`` and the retriever's ``score`` (BM25, cosine or fused)."""

    chunk: Chunk
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.chunk.to_dict(), "score": self.score, "rank": self.rank}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        fields = {k: data[k] for k in ("id", "doc_id", "title", "text", "start", "end")}
        return cls(Chunk(**fields), float(data["score"]), int(data["rank"]))


@dataclass
class BuildReport:
    """What a build did: documents added, changed, removed or kept, chunks embedded, and the embedding calls."""

    name: str
    path: str
    hash: str
    n_documents: int
    n_chunks: int
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    embedding_calls: int = 0
    embedding_cache_hits: int = 0
    embedding_tokens: int = 0
    seconds: float = 0.0
    responses: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("responses")
        return out


def _digest(config: dict[str, Any], chunk_ids: Sequence[str]) -> str:
    h = hashlib.sha256(canonical_bytes(config))
    for cid in chunk_ids:
        h.update(b"\n" + cid.encode())
    return h.hexdigest()[:16]


def _open_cache(cache: ResponseCache | str | Path | bool | None) -> ResponseCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        from hyouka.config import cache_path

        return ResponseCache(cache_path())
    return cache if isinstance(cache, ResponseCache) else ResponseCache(cache)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


class Index:
    """A persistent index of chunks for one retriever; build it with :meth:`build`, reopen it with :meth:`open`.

    >>> index = Index.build("docs/", "blog", chunk_size=512, chunk_overlap=64, retriever="bm25")
    >>> index.search("ネットワークの冗長化とは？", k=4)[0].chunk.title
    """

    def __init__(self, path: Path, manifest: dict[str, Any], *, cache: ResponseCache | None = None,
                 embedder: Embedder | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.cache = cache
        self._embedder = embedder
        self._chunks: list[Chunk] | None = None
        self._bm25: BM25Store | None = None
        self._vectors: VectorStore | None = None
        self._executor: Executor | None = None
        self._reranker: Any = None
        self._embedder_options: dict[str, Any] | None = None  # overrides of the recorded ones (a moved server)
        self.last_build: BuildReport | None = None

    # -- what it is ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def hash(self) -> str:
        """Hash of the configuration and the chunk ids: any change of documents or settings changes it."""
        return str(self.manifest["hash"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest["config"])

    @property
    def retriever_kind(self) -> str:
        return str(self.config["retriever"])

    @property
    def n_chunks(self) -> int:
        return int(self.manifest["n_chunks"])

    def identity(self) -> dict[str, Any]:
        """What a retrieval result depends on: part of the key of every cached retrieval.

        The embedder's identity holds its endpoint, as an ``openai:`` model's does (a name served at
        another URL may be another model). Queries embedded through a server other than the one the
        index was built with (``embedder_options``) are therefore other retrievals: their embedder's
        identity is added, so a moved server neither reuses nor overwrites the first one's results.
        """
        out = {"backend": "rag-index", "name": self.name, "hash": self.hash, "config": self.config}
        recorded = self.config.get("embedder") or {}
        if self._embedder_options and self.embeds_queries:
            live = self.embedder.identity()
            if live != recorded.get("identity"):
                out["query_embedder"] = live
        return out

    def describe(self) -> dict[str, Any]:
        """What a run records of the index it retrieved from."""
        return {"name": self.name, "hash": self.hash, "path": str(self.path), "config": self.config,
                "n_documents": self.manifest["n_documents"], "n_chunks": self.n_chunks}

    @property
    def chunks(self) -> list[Chunk]:
        if self._chunks is None:
            self._chunks = [Chunk(**row) for row in _read_jsonl(self.path / "chunks.jsonl")]
        return self._chunks

    # -- opening and building --------------------------------------------------------------------
    @classmethod
    def locate(cls, name_or_path: str | Path, root: str | Path | None = None) -> Path:
        """The folder of an index given by name (under :func:`index_root`) or by its folder's path."""
        given = Path(name_or_path).expanduser()
        if (given / "manifest.json").is_file():
            return given
        text = str(name_or_path)
        if not _NAME.match(text):
            raise RagIndexError(f"index {text!r} is neither an index folder nor a name (letters, digits, _ . -)")
        return index_root(root) / text

    @classmethod
    def open(cls, name_or_path: str | Path, *, root: str | Path | None = None,
             cache: ResponseCache | str | Path | bool | None = True,
             embedder_options: dict[str, Any] | None = None) -> Index:
        """The index called ``name_or_path`` (or in that folder); ``embedder_options`` override the recorded ones
        (``base_url``, ``api_key_env``) for the embedder that embeds queries."""
        path = cls.locate(name_or_path, root)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            known = ", ".join(m["name"] for m in list_indexes(root)) or "none"
            raise RagIndexError(f"no index {str(name_or_path)!r} in {path.parent}; indexes there: {known}. "
                              "Build one with `hyouka index build DIR --name NAME`")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise RagIndexError(f"index {path} has format {manifest.get('format')}; this hyouka reads {FORMAT}: "
                              "build it again")
        index = cls(path, manifest, cache=_open_cache(cache))
        index._embedder_options = embedder_options
        return index

    @classmethod
    def build(
        cls,
        source: str | Path | Sequence[Document],
        name: str | None = None,
        *,
        root: str | Path | None = None,
        path: str | Path | None = None,
        chunk_size: int = 512,
        chunk_overlap: int = 64,
        unit: str = "tokens",
        tokenizer: str | None = None,
        retriever: str = "bm25",
        analyzer: str = "morphemes",
        embedder: str | Embedder | None = None,
        embedder_options: dict[str, Any] | None = None,
        text_column: str | None = None,
        title_column: str | None = None,
        id_column: str | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        reranker: str | None = None,
        rerank_depth: int = 20,
        bm25: dict[str, Any] | None = None,
        cache: ResponseCache | str | Path | bool | None = True,
    ) -> Index:
        """Build (or update) the index ``name`` over ``source``: a folder or file of documents (see
        :func:`~hyouka.rag.documents.load_documents`) or a list of :class:`Document`.

        ``retriever`` is ``bm25``, ``dense`` or ``hybrid``; dense and hybrid need ``embedder``
        (``openai:text-embedding-3-small``, ``hf:intfloat/multilingual-e5-small`` or an embedder
        object; ``embedder_options`` go to it; ``query_prefix`` / ``passage_prefix`` are put before what
        is embedded, e.g. ``"query: "`` / ``"passage: "`` for E5 models). ``unit`` is ``tokens`` (of
        ``tokenizer``, a Hugging Face name or folder; default MeCab morphemes), ``characters`` or
        ``sentences``. ``reranker`` (``hf:<cross-encoder>``, the ``dense`` extra) re-orders the first
        ``rerank_depth`` candidates by a cross-encoder's score of (question, chunk). An existing
        index of that name is updated: only changed documents are chunked and embedded again.
        The report of the build is ``index.last_build``.
        """
        started = time.perf_counter()
        if retriever not in RETRIEVERS:
            raise RagIndexError(f"unknown retriever {retriever!r}; use one of: {', '.join(RETRIEVERS)}")
        if retriever != "bm25" and embedder is None:
            raise RagIndexError(f"the {retriever} retriever needs an embedder, "
                                "e.g. embedder='openai:text-embedding-3-small'")
        chunker = Chunker(unit=unit, size=chunk_size, overlap=chunk_overlap, tokenizer=tokenizer)  # type: ignore[arg-type]
        if isinstance(source, (str, Path)):
            docs = load_documents(source, text_column=text_column, title_column=title_column, id_column=id_column)
            where = str(Path(source).expanduser().resolve())
        else:
            docs, where = list(source), "documents"
        if not docs:
            raise RagIndexError("no documents to index")
        if name is None:
            name = Path(path).name if path is not None else (Path(where).stem if where != "documents" else None)
        if not name or not _NAME.match(name):
            raise RagIndexError(f"give the index a name (letters, digits, _ . -), not {name!r}")
        folder = Path(path).expanduser() if path is not None else index_root(root) / name
        the_embedder = None
        if retriever != "bm25":
            the_embedder = load_embedder(embedder, **(embedder_options or {})) if isinstance(embedder, str) \
                else embedder
        config: dict[str, Any] = {
            "retriever": retriever,
            "chunking": chunker.describe(),
            "analyzer": analyzer_info(analyzer) if retriever != "dense" else None,
            "bm25": {"k1": 1.5, "b": 0.75, "method": "lucene", **(bm25 or {})} if retriever != "dense" else None,
            "embedder": _embedder_config(embedder, the_embedder, embedder_options, query_prefix, passage_prefix),
            "fusion": {"method": "rrf", "k": RRF_K, "depth": FUSION_DEPTH} if retriever == "hybrid" else None,
        }
        if reranker is not None:  # only indexes with a reranker have the key: others keep their hash
            from hyouka.rag.rerank import load_reranker

            config["reranker"] = {**load_reranker(reranker).identity(), "spec": reranker, "depth": rerank_depth}
        previous = _previous(folder)
        report = BuildReport(name=name, path=str(folder), hash="", n_documents=len(docs), n_chunks=0)
        chunks = _chunks(docs, chunker, config, previous, report)
        the_cache = _open_cache(cache)
        index = cls(folder, {}, cache=the_cache, embedder=the_embedder)
        staging = folder.with_name(f".{folder.name}.building-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if config["analyzer"] is not None:
                terms = _terms(chunks, analyzer, config, previous)
                BM25Store.build(terms, k1=config["bm25"]["k1"], b=config["bm25"]["b"],
                                method=config["bm25"]["method"]).save(staging / "bm25")
                _write_jsonl(staging / "terms.jsonl", [{"id": c.id, "terms": t} for c, t in zip(chunks, terms,
                                                                                                strict=True)])
            if the_embedder is not None:
                vectors = index._vectors_for(chunks, config, previous, report)
                VectorStore.build(vectors).save(staging / "vectors.faiss")
            _write_jsonl(staging / "chunks.jsonl", [c.to_dict() for c in chunks])
            manifest = {
                "format": FORMAT, "name": name, "hash": _digest(config, [c.id for c in chunks]), "config": config,
                "source": where, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "n_documents": len(docs), "n_chunks": len(chunks),
                "documents": {d.id: d.content_hash for d in docs},
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                                   encoding="utf-8")
            _replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        index.manifest = manifest
        index._chunks = chunks
        report.hash, report.n_chunks, report.seconds = manifest["hash"], len(chunks), time.perf_counter() - started
        index.last_build = report
        return index

    # -- embedding -------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            recorded = self.config.get("embedder")
            if not recorded:
                raise RagIndexError(f"index {self.name} has no embedder (retriever {self.retriever_kind})")
            options = {**(recorded.get("options") or {}), **(self._embedder_options or {})}
            self._embedder = load_embedder(recorded["spec"], **options)
        return self._embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Embed queries with ``embedder`` from now on: the recorded one wrapped (a run's budget metering it),
        or one built with other options."""
        self._embedder = embedder
        self._executor = None

    def _embed(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Response]]:
        """Vectors of ``texts`` through the executor (cached by embedder identity and text); a failed call raises."""
        if self._executor is None:
            self._executor = Executor(self.embedder, self.cache)  # type: ignore[arg-type]
        responses: list[Response | None] = [None] * len(texts)
        for i, response in self._executor.execute([EmbedRequest(t) for t in texts]):
            responses[i] = response
        self._executor.flush()
        failed = next((r for r in responses if r is None or not r.ok), None)
        if failed is not None:
            raise RagIndexError(f"embedding failed: {failed.error if failed else 'no response'}")
        done = [r for r in responses if r is not None]
        if not done:
            return np.zeros((0, 0), dtype=np.float32), []
        return np.stack([decode_vector(r.text or "") for r in done]), done

    def _vectors_for(self, chunks: Sequence[Chunk], config: dict[str, Any], previous: _Previous | None,
                     report: BuildReport) -> np.ndarray:
        known: dict[str, np.ndarray] = {}
        if previous is not None and previous.config.get("embedder") == config["embedder"]:
            known = previous.vectors()
        todo = [c for c in chunks if c.id not in known]
        if todo:
            prefix = config["embedder"]["passage_prefix"]
            vectors, responses = self._embed([prefix + _passage(c) for c in todo])
            known.update({c.id: v for c, v in zip(todo, vectors, strict=True)})
            report.chunks_embedded = len(todo)
            report.responses = [r.to_dict(compact=True) for r in responses]
            assert self._executor is not None
            report.embedding_calls = self._executor.stats.model_calls
            report.embedding_cache_hits = self._executor.stats.cache_hits
            report.embedding_tokens = sum(r.prompt_tokens or 0 for r in responses)
        return np.stack([known[c.id] for c in chunks])

    # -- searching -------------------------------------------------------------------------------
    def _bm25_store(self) -> BM25Store:
        if self._bm25 is None:
            self._bm25 = BM25Store.load(self.path / "bm25", self.n_chunks)
        return self._bm25

    def _vector_store(self) -> VectorStore:
        if self._vectors is None:
            self._vectors = VectorStore.load(self.path / "vectors.faiss")
        return self._vectors

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """``texts`` as this index's analyzer turns them into BM25 terms."""
        return analyze(self.config["analyzer"]["name"], texts)

    def search(self, query: str, k: int = 4) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 4) -> list[list[Hit]]:
        """The ``k`` best chunks for each query (BM25 and vector searches run as one batch each)."""
        return self._search(queries, k)[0]

    @property
    def embeds_queries(self) -> bool:
        return self.retriever_kind in ("dense", "hybrid")

    def embed_queries(self, queries: Sequence[str]) -> tuple[np.ndarray, list[Response]]:
        """The query vectors (with the query prefix), embedded in batches through the executor."""
        prefix = (self.config["embedder"] or {}).get("query_prefix") or ""
        return self._embed([prefix + q for q in queries])

    def _search(self, queries: Sequence[str], k: int, vectors: np.ndarray | None = None
                ) -> tuple[list[list[Hit]], list[Response | None]]:
        """Hits per query, and each query's embedding response (``None`` for BM25, or ``vectors`` given)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not queries:
            return [], []
        kind = self.retriever_kind
        rerank = self.config.get("reranker")
        wanted = max(k, rerank["depth"]) if rerank else k
        depth = wanted if kind != "hybrid" else max(wanted, self.config["fusion"]["depth"])
        ranked: list[list[tuple[list[int], list[float]]]] = []
        embeds: list[Response | None] = [None] * len(queries)
        if kind in ("bm25", "hybrid"):
            positions, scores = self._bm25_store().search(self.terms(queries), depth)
            ranked.append([(p.tolist(), s.tolist()) for p, s in zip(positions, scores, strict=True)])
        if kind in ("dense", "hybrid"):
            if vectors is None:
                vectors, responses = self.embed_queries(queries)
                embeds = list(responses)
            positions, scores = self._vector_store().search(vectors, depth)
            ranked.append([([int(x) for x in p if x >= 0], s[: int((p >= 0).sum())].tolist())
                           for p, s in zip(positions, scores, strict=True)])
        chunks = self.chunks
        out = []
        for q in range(len(queries)):
            if kind == "hybrid":
                pairs = rrf([ranked[0][q][0], ranked[1][q][0]], self.config["fusion"]["k"])[:wanted]
            else:
                pairs = list(zip(*ranked[0][q], strict=True))[:wanted]
            if rerank:
                pairs = self._reranked(queries[q], [p for p, _ in pairs])[:k]
            out.append([Hit(chunks[p], float(s), r) for r, (p, s) in enumerate(pairs, start=1)])
        return out, embeds

    def _reranked(self, query: str, positions: Sequence[int]) -> list[tuple[int, float]]:
        """``positions`` re-ordered by the cross-encoder's scores of (query, chunk), best first."""
        if self._reranker is None:
            from hyouka.rag.rerank import load_reranker

            self._reranker = load_reranker(self.config["reranker"]["spec"])
        scores = self._reranker.scores(query, [_passage(self.chunks[p]) for p in positions])
        return sorted(zip(positions, scores, strict=True), key=lambda ps: -ps[1])

    def evaluate(self, queries: Any, k: int = 20, **options: Any) -> Any:
        """Retrieval scored against each query's gold ids (hit@k, recall@1/5/20, MRR, nDCG@k, 95% intervals), no
        model: see :func:`hyouka.rag.evaluate.evaluate_retrieval`, which takes the ``options``."""
        from hyouka.rag.evaluate import evaluate_retrieval

        return evaluate_retrieval(self, queries, k, **options)

    def retriever(self) -> IndexRetriever:
        """This index as an engine backend answering :class:`~hyouka.rag.calls.RetrieveRequest`."""
        from hyouka.rag.retriever import IndexRetriever

        return IndexRetriever(self)


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each item scores the sum of ``1 / (k + rank)`` over the rankings holding it
    (rank from 1); best first, ties broken by the best single rank, then by position."""
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


def _passage(chunk: Chunk) -> str:
    """What is embedded of a chunk: its title and text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def _embedder_config(spec: str | Embedder | None, embedder: Embedder | None, options: dict[str, Any] | None,
                     query_prefix: str, passage_prefix: str) -> dict[str, Any] | None:
    if embedder is None:
        return None
    from hyouka.models.registry import recordable_options

    return {"spec": spec if isinstance(spec, str) else f"{type(embedder).__name__}:{embedder.name}",
            "identity": embedder.identity(), "options": recordable_options(options),
            "query_prefix": query_prefix, "passage_prefix": passage_prefix}


@dataclass
class _Previous:
    """The index a build replaces: what can be kept from it."""

    path: Path
    config: dict[str, Any]
    documents: dict[str, str]
    chunk_rows: list[dict[str, Any]]

    def vectors(self) -> dict[str, np.ndarray]:
        file = self.path / "vectors.faiss"
        if not file.is_file():
            return {}
        matrix = VectorStore.load(file).vectors()
        if len(matrix) != len(self.chunk_rows):
            return {}
        return {row["id"]: matrix[i] for i, row in enumerate(self.chunk_rows)}

    def terms(self) -> dict[str, list[str]]:
        return {row["id"]: row["terms"] for row in _read_jsonl(self.path / "terms.jsonl")}


def _previous(folder: Path) -> _Previous | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT:
        return None
    return _Previous(folder, manifest["config"], manifest.get("documents") or {}, _read_jsonl(folder / "chunks.jsonl"))


def _chunks(docs: Sequence[Document], chunker: Chunker, config: dict[str, Any], previous: _Previous | None,
            report: BuildReport) -> list[Chunk]:
    """Every document's chunks: kept from the previous build when the document and the chunking are unchanged."""
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise RagIndexError(f"two documents have the id {d.id!r}")
        seen.add(d.id)
    reusable: dict[str, list[Chunk]] = {}
    old_docs: dict[str, str] = {}
    if previous is not None:
        old_docs = previous.documents
        if previous.config.get("chunking") == config["chunking"]:
            for row in previous.chunk_rows:
                reusable.setdefault(row["doc_id"], []).append(Chunk(**row))
    tokenizer = None
    if chunker.unit == "tokens" and chunker.tokenizer:
        from hyouka.rag.chunking import load_tokenizer

        tokenizer = load_tokenizer(chunker.tokenizer)
    out: list[Chunk] = []
    for d in docs:
        if d.id not in old_docs:
            report.added += 1
        elif old_docs[d.id] != d.content_hash:
            report.changed += 1
        else:
            report.unchanged += 1
        kept = reusable.get(d.id) if old_docs.get(d.id) == d.content_hash else None
        out += kept if kept is not None else chunker.chunks(d, tokenizer)
    report.removed = len(set(old_docs) - seen)
    return out


def _terms(chunks: Sequence[Chunk], analyzer: str, config: dict[str, Any], previous: _Previous | None
           ) -> list[list[str]]:
    known: dict[str, list[str]] = {}
    if previous is not None and previous.config.get("analyzer") == config["analyzer"]:
        known = previous.terms()
    todo = [c for c in chunks if c.id not in known]
    known.update(zip([c.id for c in todo], analyze(analyzer, [_passage(c) for c in todo]), strict=True))
    return [known[c.id] for c in chunks]


def _replace(staging: Path, folder: Path) -> None:
    """Put the freshly built ``staging`` folder in place of ``folder`` (the old one is moved aside first)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)

