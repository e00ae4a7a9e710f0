"""Documents in, chunks out, indexes kept up to date: folders and tables, the three chunk units, rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hyouka.rag.chunking import Chunker, ChunkingError, sentence_spans
from hyouka.rag.documents import Document, DocumentError, load_documents
from hyouka.rag.index import Index, RagIndexError
from hyouka.testing.openai_server import ServerStats, serve_openai

pytest.importorskip("bm25s")


def _folder(root: Path) -> Path:
    root.mkdir()
    (root / "net.md").write_text("# 冗長化\nネットワークの冗長化とは、経路や機器を二重化することです。\n",
                                 encoding="utf-8")
    (root / "cat.html").write_text("<html><head><title>猫について</title><style>p{}</style></head><body><p>猫は"
                                   "夜行性&amp;肉食です。</p><script>alert(1)</script></body></html>", encoding="utf-8")
    (root / "sub").mkdir()
    (root / "sub" / "db.txt").write_text("データベースのバックアップは毎日取得します。", encoding="utf-8")
    (root / ".hidden.txt").write_text("見えない", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG")
    return root


def test_a_folder_of_text_markdown_html_and_pdf(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("pypdf")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = _folder(tmp_path / "docs")
    fig = plt.figure()
    fig.text(0.1, 0.5, "Redundancy means duplicated network paths.")
    fig.savefig(root / "paper.pdf")
    plt.close(fig)
    docs = {d.id: d for d in load_documents(root)}
    assert sorted(docs) == ["cat.html", "net.md", "paper.pdf", "sub/db.txt"]
    assert docs["net.md"].title == "冗長化"
    assert (docs["cat.html"].title, docs["cat.html"].text) == ("猫について", "猫は夜行性&肉食です。")
    assert docs["sub/db.txt"].title == "db"
    assert "duplicated network paths" in docs["paper.pdf"].text


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_table_with_a_text_column(tmp_path: Path, suffix: str) -> None:
    rows = [{"doc_id": "a", "title": "東京", "body": "東京は日本の首都です。"},
            {"doc_id": "b", "title": "大阪", "body": "大阪は西日本の都市です。"}]
    path = tmp_path / f"docs{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    elif suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    docs = load_documents(path)
    assert [(d.id, d.title, d.text) for d in docs] == [(r["doc_id"], r["title"], r["body"]) for r in rows]
    with pytest.raises(DocumentError, match="no text column 'text_ja'"):
        load_documents(path, text_column="text_ja")


def test_bad_documents_are_named(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file or folder"):
        load_documents(tmp_path / "missing")
    (tmp_path / "t.jsonl").write_text('{"id": 1, "title": "x"}\n', encoding="utf-8")
    with pytest.raises(DocumentError, match="no text column"):
        load_documents(tmp_path / "t.jsonl")
    (tmp_path / "u.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', encoding="utf-8")
    with pytest.raises(DocumentError, match="row 2 repeats the document id '1'"):
        load_documents(tmp_path / "u.jsonl")
    (tmp_path / "v.txt").write_bytes("日本".encode("cp932"))
    with pytest.raises(DocumentError, match="not UTF-8"):
        load_documents(tmp_path / "v.txt")


def test_japanese_sentences_never_end_inside_quotes() -> None:
    text = "彼は「もう帰る。明日また来る！」と言った。本当に？　はい。\n改行で終わる文\n\n「閉じない引用\n\n次の段落。"
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ["彼は「もう帰る。明日また来る！」と言った。", "本当に？", "はい。", "改行で終わる文",
                         "「閉じない引用", "次の段落。"]


def test_chunk_units_spans_overlap_and_ids() -> None:
    doc = Document("d1", "一文目です。二文目はもう少し長い文です。三文目。四文目で終わり。", "題")
    by_chars = Chunker("characters", size=10, overlap=3).chunks(doc)
    assert len(doc.text) == 32
    assert [(c.start, c.end) for c in by_chars] == [(0, 10), (7, 17), (14, 24), (21, 31), (28, 32)]
    assert all(doc.text[c.start:c.end] == c.text and c.doc_id == "d1" and c.title == "題" for c in by_chars)
    by_sentences = Chunker("sentences", size=18, overlap=5).chunks(doc)  # 三文目。 (4) is the overlap
    assert [c.text for c in by_sentences] == ["一文目です。", "二文目はもう少し長い文です。三文目。",
                                              "三文目。四文目で終わり。"]
    by_tokens = Chunker("tokens", size=4, overlap=1).chunks(doc)  # MeCab morphemes
    assert by_tokens[0].text == "一文目です" or by_tokens[0].text.startswith("一")
    assert by_tokens[1].start < by_tokens[0].end  # one morpheme shared
    again = Chunker("tokens", size=4, overlap=1).chunks(doc)
    assert [c.id for c in again] == [c.id for c in by_tokens]  # content-hash ids: the same every time
    assert len({c.id for c in by_tokens}) == len(by_tokens)
    with pytest.raises(ChunkingError, match="overlap"):
        Chunker("tokens", size=64, overlap=64)
    with pytest.raises(ChunkingError, match="unknown chunk unit"):
        Chunker("words", size=64, overlap=0)  # type: ignore[arg-type]


def test_a_rebuild_redoes_only_changed_documents(tmp_path: Path, cache) -> None:
    root = _folder(tmp_path / "docs")
    stats = ServerStats()
    with serve_openai(stats=stats) as url:
        def build() -> Index:
            return Index.build(root, "blog", root=tmp_path / "indexes", retriever="hybrid", chunk_size=16,
                               chunk_overlap=4, embedder="openai:text-embedding-3-small",
                               embedder_options={"base_url": url}, cache=False)

        first = build()
        assert first.last_build.added == 3 and first.last_build.chunks_embedded == first.n_chunks
        unchanged = build()
        assert unchanged.hash == first.hash and unchanged.last_build.chunks_embedded == 0
        (root / "net.md").write_text("# 冗長化\nネットワークの冗長化とは、経路を二重化することです。\n",
                                     encoding="utf-8")
        (root / "sub" / "db.txt").unlink()
        changed = build()
        report = changed.last_build
        assert (report.added, report.changed, report.removed, report.unchanged) == (0, 1, 1, 1)
        net_chunks = [c for c in changed.chunks if c.doc_id == "net.md"]
        assert report.chunks_embedded == len(net_chunks)  # only the changed document's chunks were embedded
        assert changed.hash != first.hash
        hits = changed.search("経路の二重化", k=2)
    assert hits[0].chunk.doc_id == "net.md"
    assert stats.by_path["embeddings"] == 3  # first build, the changed document, the query
    with pytest.raises(RagIndexError, match="no index 'nothing'"):
        Index.open("nothing", root=tmp_path / "indexes")
    with pytest.raises(RagIndexError, match="needs an embedder"):
        Index.build(root, "x", root=tmp_path / "indexes", retriever="dense")
