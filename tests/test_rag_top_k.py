"""``hyouka run --index``: ``--top-k`` counts the chunks, ``--num-fewshot`` the solved examples, together;
``-k`` is the first with ``--index`` (``--index blog -k 4``) and the second without."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.rag.documents import Document
from hyouka.rag.index import Index
from hyouka.store.store import Store
from hyouka.testing.openai_server import ServerStats, serve_openai

pytest.importorskip("bm25s")
runner = CliRunner()
FACTS = [("富士山", "富士山の高さは3776メートルです。"), ("琵琶湖", "琵琶湖は滋賀県にある日本最大の湖です。"),
         ("利根川", "利根川は坂東太郎と呼ばれます。"), ("屋久島", "屋久島には縄文杉があります。")]


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HYOUKA_INDEX_DIR", str(tmp_path / "indexes"))
    docs = [Document(id=f"d{i}", title=t, text=x) for i, (t, x) in enumerate(FACTS)]
    Index.build(docs, "facts", root=tmp_path / "indexes", cache=False)
    rows = [{"id": f"q{i}", "question": f"{t}について教えて", "ground_truth": f"答え{i}番",
             "relevant_doc_ids": [f"d{i}"]} for i, (t, _) in enumerate(FACTS)]
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return data, f"sqlite:///{tmp_path / 'results.sqlite'}"


def _run(url: str, data: Path, store: str, *args: str) -> list[dict]:
    result = runner.invoke(app, ["run", "--model", "openai:echo", "--base-url", url, "--tasks", f"rag:{data}",
                                 "--index", "facts", "--metrics", "rouge_l,recall_at_k", "--max-tokens", "4",
                                 "--no-cache", "--store", store, *args])
    assert result.exit_code == 0, result.output
    run = Store(store).list_runs()[0]
    return Store(store).samples(run["id"])


def test_top_k_and_num_fewshot_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, store = _setup(tmp_path, monkeypatch)
    stats = ServerStats()
    with serve_openai(stats=stats) as url:
        samples = _run(url, data, store, "--top-k", "3", "--num-fewshot", "1")
    assert all(len(s["details"]["retrieval"]["ranked_ids"]) == 3 for s in samples)
    sent = [prompt for (path, prompt), _ in stats.attempts.items() if path == "chat/completions"]
    assert len(sent) == len(FACTS)
    # each question was asked after one other row, solved: its answer is in what reached the server
    for prompt in sent:
        assert sum(f"答え{i}番" in prompt for i in range(len(FACTS))) == 1, prompt


def test_k_with_an_index_counts_the_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, store = _setup(tmp_path, monkeypatch)
    stats = ServerStats()
    with serve_openai(stats=stats) as url:
        samples = _run(url, data, store, "-k", "2")
    assert all(len(s["details"]["retrieval"]["ranked_ids"]) == 2 for s in samples)
    sent = [prompt for (path, prompt), _ in stats.attempts.items() if path == "chat/completions"]
    assert not any(f"答え{i}番" in p for p in sent for i in range(len(FACTS)))  # no solved examples


def test_conflicting_k_options_are_refused(tmp_path: Path) -> None:
    top_k = runner.invoke(app, ["run", "--model", "openai:echo", "--tasks", "jnli", "--top-k", "3"])
    assert top_k.exit_code == 2 and "--top-k counts the chunks" in top_k.output
    both = runner.invoke(app, ["run", "--model", "openai:echo", "--tasks", "jnli", "-k", "2", "--num-fewshot", "3"])
    assert both.exit_code == 2 and "-k is --num-fewshot" in both.output
    rag = runner.invoke(app, ["run", "--model", "openai:echo", "--tasks", "rag:x.jsonl", "--index", "i",
                              "-k", "2", "--top-k", "3"])
    assert rag.exit_code == 2 and "-k is --top-k" in rag.output


def test_eval_answers_from_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, store = _setup(tmp_path, monkeypatch)
    stats = ServerStats()
    with serve_openai(stats=stats) as url:
        result = runner.invoke(app, ["eval", str(data), "--model", "openai:echo", "--base-url", url,
                                     "--inputs-column", "question", "--targets-column", "ground_truth",
                                     "--index", "facts", "--top-k", "2", "--metrics", "rouge_l,recall_at_k",
                                     "--max-tokens", "4", "--no-cache", "--store", store])
    assert result.exit_code == 0, result.output
    assert "recall_at_2" in result.output
    (run,) = Store(store).list_runs()
    samples = Store(store).samples(run["id"])
    assert len(samples) == len(FACTS)
    assert all(len(s["details"]["retrieval"]["ranked_ids"]) == 2 for s in samples)
    sent = [prompt for (path, prompt), _ in stats.attempts.items() if path == "chat/completions"]
    # each question was asked with its retrieved chunks: the fact of its own document is in the prompt
    for i, (_, fact) in enumerate(FACTS):
        assert any(f"{FACTS[i][0]}について" in p and fact in p for p in sent)
    refused = runner.invoke(app, ["eval", str(data), "--model", "openai:echo", "--top-k", "2"])
    assert refused.exit_code == 2 and "give --index" in refused.output
