"""Dense retrieval with a sentence-transformers embedder: a tiny random BERT built here, no hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hyouka.rag.documents import Document
from hyouka.rag.index import Index

pytest.importorskip("faiss")
st = pytest.importorskip("sentence_transformers")


def _tiny_sentence_transformer(folder: Path, texts: list[str]) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    chars = sorted({ch for t in texts for ch in t if not ch.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    bert = folder / "bert"
    bert.mkdir(parents=True)
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(str(bert / "vocab.txt"), do_lower_case=False).save_pretrained(bert)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(bert)
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Pooling, Transformer
    model = st.SentenceTransformer(modules=[Transformer(str(bert), max_seq_length=256), Pooling(32, "mean")],
                                   device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"


def test_sentence_transformers_embedder_equals_its_own_encode(jglue_dir: Path, tmp_path: Path) -> None:
    data = json.loads((jglue_dir / "jsquad-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"][:4] for p in a["paragraphs"]]
    docs = [Document(id=f"p{i}", text=p["context"]) for i, p in enumerate(paragraphs)]
    questions = [qa["question"] for p in paragraphs for qa in p["qas"]][:40]
    path = _tiny_sentence_transformer(tmp_path, [d.text for d in docs] + questions)
    index = Index.build(docs, "st", root=tmp_path / "indexes", retriever="dense", unit="characters",
                        chunk_size=4000, chunk_overlap=0, embedder=f"hf:{path}", cache=tmp_path / "cache.sqlite")
    assert index.config["embedder"]["identity"]["weights"]  # the checkpoint's content fingerprint
    hits = Index.open("st", root=tmp_path / "indexes", cache=False).search_many(questions, 5)
    reference = st.SentenceTransformer(str(path), device="cpu")
    matrix = reference.encode([d.text for d in docs], normalize_embeddings=True)
    queries = reference.encode(questions, normalize_embeddings=True)
    expected = np.argsort(-(queries @ matrix.T), axis=1, kind="stable")[:, :5]
    assert [[h.chunk.doc_id for h in row] for row in hits] == [[docs[i].id for i in row] for row in expected]
    assert [h.score for h in hits[0]] == pytest.approx(np.sort(queries[0] @ matrix.T)[::-1][:5], abs=1e-5)
