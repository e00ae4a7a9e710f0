"""Retrieval index commands: ``hyouka index build | search | eval | list``."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import Format, console, emit, fail, fmt, usd
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS

index_app = typer.Typer(help="Retrieval indexes for RAG: chunk and index documents, search them, score "
                                     "their retrieval against gold ids.",
                        no_args_is_help=True)
app.add_typer(index_app, name="index")

_ERRORS = (ValueError, LookupError, OSError, ImportError)
RootOpt = Annotated[Path | None, typer.Option(
    "--root", help="folder of named indexes (default: HYOUKA_INDEX_DIR or ~/.hyouka/indexes)")]


@index_app.command("build")
def build_cmd(
    source: Annotated[Path, typer.Argument(help="a folder of .txt/.md/.html/.pdf files, or a .jsonl/.csv/.parquet "
                                                "table with a text column")],
    name: Annotated[str | None, typer.Option("--name", help="the index's name (default: the folder's)")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="units per chunk (sentences: characters)")
                          ] = 512,
    chunk_overlap: Annotated[int, typer.Option("--chunk-overlap", min=0, help="units shared by neighbouring chunks")
                             ] = 64,
    unit: Annotated[str, typer.Option(help="tokens, characters or sentences (Japanese: 。！？ and line ends)")
                    ] = "tokens",
    tokenizer: Annotated[str | None, typer.Option(
        help="unit tokens: the Hugging Face tokenizer counted (name or folder); default MeCab morphemes")] = None,
    retriever: Annotated[str, typer.Option(help="bm25 (morphemes), dense (an embedder's vectors) or hybrid (both, "
                                                "reciprocal-rank fusion)")] = "bm25",
    analyzer: Annotated[str, typer.Option(help="BM25 terms: morphemes, bigrams (characters) or whitespace")
                        ] = "morphemes",
    embedder: Annotated[str | None, typer.Option(
        help="dense/hybrid: openai:<model> (any /v1/embeddings server) or hf:<sentence-transformers model>")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="openai: embedder: the endpoint")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="openai: embedder: the variable holding the key")] = None,
    query_prefix: Annotated[str, typer.Option(help="put before each embedded query (E5: 'query: ')")] = "",
    passage_prefix: Annotated[str, typer.Option(help="put before each embedded chunk (E5: 'passage: ')")] = "",
    reranker: Annotated[str | None, typer.Option(
        help="re-order the first --rerank-depth candidates with a cross-encoder: hf:<model or folder>")] = None,
    rerank_depth: Annotated[int, typer.Option("--rerank-depth", min=1, help="candidates the reranker scores")] = 20,
    text_column: Annotated[str | None, typer.Option(help="tables: the text column (default text, content…)")] = None,
    title_column: Annotated[str | None, typer.Option(help="tables: the title column (default title)")] = None,
    id_column: Annotated[str | None, typer.Option(help="tables: the document id column (default id, doc_id)")
                         ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the embedding cache")] = False,
    root: RootOpt = None,
    format: Format = "table",
) -> None:
    """Chunk and index documents; building an existing index again redoes only the documents that changed."""
    from hyouka.rag.index import Index

    options = {k: v for k, v in {"base_url": base_url, "api_key_env": api_key_env}.items() if v is not None}
    try:
        index = Index.build(
            source, name or (source.stem if source.is_file() else source.resolve().name), root=root,
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, unit=unit, tokenizer=tokenizer, retriever=retriever,
            analyzer=analyzer, embedder=embedder, embedder_options=options, query_prefix=query_prefix,
            passage_prefix=passage_prefix, reranker=reranker, rerank_depth=rerank_depth, text_column=text_column,
            title_column=title_column, id_column=id_column,
            cache=not no_cache,
        )
    except _ERRORS as exc:
        fail(str(exc))
        return
    report = index.last_build
    assert report is not None
    if format != "table":
        emit(report.to_dict(), format)
        return
    console.print(f"index {clean(report.name)} ({index.retriever_kind}) at {clean(report.path)}: "
                  f"{report.n_documents} documents, {report.n_chunks} chunks, hash {report.hash}, "
                  f"{report.seconds:.1f} s")
    console.print(f"documents: {report.added} added, {report.changed} changed, {report.removed} removed, "
                  f"{report.unchanged} unchanged")
    if index.config.get("embedder"):
        console.print(f"embedded {report.chunks_embedded} chunks: {report.embedding_calls} sent, "
                      f"{report.embedding_cache_hits} from the cache, {report.embedding_tokens} tokens")


@index_app.command("search")
def search_cmd(
    name: Annotated[str, typer.Argument(help="the index's name (`hyouka index list`) or folder")],
    query: Annotated[str, typer.Argument(help="the question to retrieve for")],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="chunks to return")] = 4,
    base_url: Annotated[str | None, typer.Option("--base-url", help="openai: embedder: the endpoint, if moved")
                        ] = None,
    root: RootOpt = None,
    format: Format = "table",
) -> None:
    """The k best chunks of an index for a query, best first."""
    from hyouka.rag.index import Index

    try:
        index = Index.open(name, root=root, embedder_options={"base_url": base_url} if base_url else None)
        hits = index.search(query, k)
    except _ERRORS as exc:
        fail(str(exc))
        return
    rows = [h.to_dict() for h in hits]
    if format != "table":
        emit(rows, format)
        return
    table = TextTable(("rank", "score", "document", "title", "chunk", "text"), title=f"{index.name}: {clean(query)}",
                      right=("rank", "score"))
    for h in hits:
        text = h.chunk.text.replace("\n", " ")
        table.add_row(h.rank, fmt(h.score, 3), h.chunk.doc_id, h.chunk.title, h.chunk.id,
                      text if len(text) <= 60 else text[:60] + "…")
    table.print()


@index_app.command("eval")
def eval_cmd(
    name: Annotated[str, typer.Argument(help="the index's name (`hyouka index list`) or folder")],
    queries: Annotated[Path, typer.Argument(
        help="JSONL/CSV/Parquet file: a question per row and its relevant document (or chunk) ids")],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="chunks retrieved per query")] = 20,
    metrics: Annotated[str | None, typer.Option(
        "--metrics", help="comma-separated retrieval metrics (default: hit_at_K, recall_at_1/5/20 up to K, mrr, "
                          "ndcg_at_K; also precision_at_N, recall@N)")] = None,
    question_column: Annotated[str | None, typer.Option(
        "--question-column", help="the question column (default: question, query, inputs…)")] = None,
    relevant_column: Annotated[str | None, typer.Option(
        "--relevant-column", help="the gold ids column: a list, a JSON list or one id per row (default: "
                                  "relevant_doc_ids, gold_doc_ids…)")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="query ids (default: id, qid…)")] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N queries", min=1)] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="openai: embedder: the endpoint, if moved")
                        ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the retrieval and embedding "
                                                              "cache")] = False,
    root: RootOpt = None,
    format: Format = "table",
) -> None:
    """Score an index's retrieval against gold ids: hit@k, recall@1/5/20, MRR, nDCG@k with 95% intervals; no model."""
    from hyouka.rag.evaluate import evaluate_retrieval

    try:
        result = evaluate_retrieval(
            name, queries, k, metrics=metrics, question=question_column, relevant=relevant_column,
            id_column=id_column, limit=limit, root=root, cache=not no_cache,
            embedder_options={"base_url": base_url} if base_url else None)
    except _ERRORS as exc:
        fail(str(exc))
        return
    if format != "table":
        emit(result.to_dict(), format, lines=result.rows)
        return
    table = TextTable(("metric", "value", "95% CI", "n"), title=f"retrieval: {clean(result.index)} (k={k})",
                      right=("value", "n"))
    for metric, agg in result.aggregates.items():
        ci = f"[{fmt(agg['ci_low'], 3)}, {fmt(agg['ci_high'], 3)}]" if agg["ci_low"] is not None else ""
        table.add_row(metric, fmt(agg["value"]), ci, f"{agg['n_scored']}/{agg['n_total']}")
    table.print()
    calls = result.calls
    line = (f"{calls['calls']['requested']} retrievals ({calls['calls']['cache_hits']} from the cache), latency p50 "
            f"{fmt(calls['latency_s']['p50'], 4)} s")
    if calls["prompt_tokens"] or calls.get("price"):  # a dense or hybrid index embeds its queries
        line += f"; {calls['prompt_tokens']:,} embedding tokens, cost {usd(calls.get('cost_usd'))}"
    console.print(line)
    for agg in result.aggregates.values():
        if agg.get("note"):
            console.print(f"note: {clean(agg['note'])}")
            break


@index_app.command("list")
def list_cmd(root: RootOpt = None, format: Format = "table") -> None:
    """The indexes built, with their retriever, sizes and hash."""
    from hyouka.rag.index import list_indexes

    manifests = list_indexes(root)
    rows: list[dict[str, Any]] = [
        {"name": m["name"], "retriever": m["config"]["retriever"], "documents": m["n_documents"],
         "chunks": m["n_chunks"], "chunking": m["config"]["chunking"],
         "embedder": (m["config"].get("embedder") or {}).get("spec"), "hash": m["hash"], "built_at": m["built_at"],
         "source": m.get("source"), "path": m["path"]}
        for m in manifests
    ]
    if format != "table":
        emit(rows, format)
        return
    table = TextTable(("name", "retriever", "documents", "chunks", "chunking", "embedder", "hash", "built"),
                      right=("documents", "chunks"))
    for r in rows:
        c = r["chunking"]
        table.add_row(r["name"], r["retriever"], r["documents"], r["chunks"],
                      f"{c['size']} {c['unit']} / {c['overlap']}", r["embedder"] or "", r["hash"],
                      str(r["built_at"])[:19])
    table.print()
