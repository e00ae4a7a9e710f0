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


def _tiny_bert(folder: Path, texts: list[str]) -> tuple[Path, int]:
    from transformers import BertTokenizerFast

    chars = sorted({ch for t in texts for ch in t if not ch.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    bert = folder / "bert"
    bert.mkdir(parents=True)
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(str(bert / "vocab.txt"), do_lower_case=False).save_pretrained(bert)
    return bert, len(vocab)


def _tiny_sentence_transformer(folder: Path, texts: list[str]) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    bert, n_vocab = _tiny_bert(folder, texts)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=n_vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
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
    # identified as hf: models are: the checkpoint's content fingerprint as its revision
    assert index.config["embedder"]["identity"]["revision"].startswith("local-")
    hits = Index.open("st", root=tmp_path / "indexes", cache=False).search_many(questions, 5)
    reference = st.SentenceTransformer(str(path), device="cpu")
    matrix = reference.encode([d.text for d in docs], normalize_embeddings=True)
    queries = reference.encode(questions, normalize_embeddings=True)
    expected = np.argsort(-(queries @ matrix.T), axis=1, kind="stable")[:, :5]
    assert [[h.chunk.doc_id for h in row] for row in hits] == [[docs[i].id for i in row] for row in expected]
    assert [h.score for h in hits[0]] == pytest.approx(np.sort(queries[0] @ matrix.T)[::-1][:5], abs=1e-5)


def test_a_cross_encoder_reranks_the_first_candidates(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(
        ["東京は日本の首都です。", "東京タワーは東京にある。", "大阪は関西の都市です。", "京都には寺が多い。",
         "東京駅は丸の内にある。", "富士山は日本一高い山。"])]
    bert, n_vocab = _tiny_bert(tmp_path, [d.text for d in docs] + ["東京の名所は？"])
    torch.manual_seed(1)
    config = BertConfig(vocab_size=n_vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(bert)
    plain = Index.build(docs, "plain", root=tmp_path / "indexes", unit="characters", chunk_size=100,
                        chunk_overlap=0, cache=False)
    reranked = Index.build(docs, "reranked", root=tmp_path / "indexes", unit="characters", chunk_size=100,
                           chunk_overlap=0, reranker=f"hf:{bert}", rerank_depth=4, cache=False)
    assert reranked.hash != plain.hash and reranked.config["reranker"]["depth"] == 4
    candidates = plain.search("東京の名所は？", k=4)
    scores = st.CrossEncoder(str(bert), device="cpu").predict([("東京の名所は？", h.chunk.text) for h in candidates])
    expected = [candidates[i].chunk.id for i in np.argsort(-np.asarray(scores), kind="stable")[:2]]
    hits = reranked.search("東京の名所は？", k=2)
    assert [h.chunk.id for h in hits] == expected
    assert [h.score for h in hits] == pytest.approx(sorted(scores, reverse=True)[:2], abs=1e-5)
