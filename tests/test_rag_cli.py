"""`hyouka index build | search | list` and the RAG options of `hyouka run`, in the command line's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.errors import ArgumentError
from hyouka.rag import Index
from hyouka.testing.openai_server import EchoModel

pytest.importorskip("bm25s")
runner = CliRunner()


def _docs(root: Path) -> Path:
    root.mkdir()
    (root / "net.md").write_text("# 冗長化\nネットワークの冗長化とは、経路や機器を二重化することです。",
                                 encoding="utf-8")
    (root / "cat.txt").write_text("猫は夜行性の動物です。", encoding="utf-8")
    return root


def test_index_build_search_list(tmp_path: Path) -> None:
    docs, indexes = _docs(tmp_path / "docs"), str(tmp_path / "indexes")
    built = runner.invoke(app, ["index", "build", str(docs), "--name", "blog", "--chunk-size", "512",
                                "--chunk-overlap", "64", "--unit", "tokens", "--retriever", "bm25", "--root", indexes,
                                "--format", "json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.output)
    assert (report["name"], report["n_documents"], report["added"]) == ("blog", 2, 2)
    found = runner.invoke(app, ["index", "search", "blog", "ネットワークの冗長化とは？", "-k", "1", "--root", indexes,
                                "--format", "json"])
    assert found.exit_code == 0, found.output
    (hit,) = json.loads(found.output)
    assert (hit["doc_id"], hit["title"], hit["rank"]) == ("net.md", "冗長化", 1)
    table = runner.invoke(app, ["index", "search", "blog", "猫", "--root", indexes])
    assert "cat.txt" in table.output and "net.md" in table.output
    listed = runner.invoke(app, ["index", "list", "--root", indexes])
    assert "blog" in listed.output and report["hash"] in listed.output
    bad = runner.invoke(app, ["index", "build", str(docs), "--retriever", "dense", "--root", indexes])
    assert bad.exit_code == 2 and "needs an embedder" in bad.output
    missing = runner.invoke(app, ["index", "search", "nope", "q", "--root", indexes])
    assert missing.exit_code == 2 and "no index 'nope'" in missing.output and "blog" in missing.output


def test_rag_options_are_checked_before_any_call(tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text(json.dumps({"question": "q", "ground_truth": "a"}) + "\n", encoding="utf-8")
    out = runner.invoke(app, ["run", "--model", "openai:echo", "--base-url", "http://127.0.0.1:9/v1",
                              "--tasks", f"rag:{data}", "--store", f"sqlite:///{tmp_path / 's.sqlite'}"])
    assert out.exit_code == 2 and "--index" in out.output
    out = runner.invoke(app, ["run", "--model", "openai:echo", "--tasks", "jnli", "--metrics", "rouge_l"])
    assert out.exit_code == 2 and "--index" in out.output
    with pytest.raises(ArgumentError, match="give index="):
        hyouka.evaluate(EchoModel(), [{"question": "q"}], k=4, store=f"sqlite:///{tmp_path / 's.sqlite'}")
    with pytest.raises(ArgumentError, match="recall_at_5 needs an index"):
        hyouka.evaluate(EchoModel(), [{"question": "q"}], metrics=["recall@5"],
                        store=f"sqlite:///{tmp_path / 's.sqlite'}")
    docs = _docs(tmp_path / "docs")
    index = Index.build(docs, "blog", root=tmp_path / "indexes", cache=False)
    with pytest.raises(ArgumentError, match="relevant document ids: give relevant="):
        hyouka.evaluate(EchoModel(), [{"question": "q"}], index=index, metrics=["mrr"],
                        store=f"sqlite:///{tmp_path / 's.sqlite'}", cache=False)


def test_index_eval_scores_retrieval_against_gold_ids(tmp_path: Path, hyouka_home: Path) -> None:
    import math

    docs, indexes = _docs(tmp_path / "docs"), str(tmp_path / "indexes")
    assert runner.invoke(app, ["index", "build", str(docs), "--name", "blog", "--root", indexes]).exit_code == 0
    queries = [("ネットワークの冗長化とは？", ["net.md"]), ("夜行性の動物は？", ["cat.txt"]),
               ("猫とネットワーク", ["net.md", "cat.txt"]), ("二重化する機器", ["cat.txt"])]
    data = tmp_path / "queries.jsonl"
    data.write_text("".join(json.dumps({"qid": f"q{i}", "query": q, "gold_doc_ids": g}, ensure_ascii=False) + "\n"
                            for i, (q, g) in enumerate(queries)), encoding="utf-8")
    out = runner.invoke(app, ["index", "eval", "blog", str(data), "-k", "2", "--root", indexes, "--format", "json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert [r["id"] for r in result["rows"]] == ["q0", "q1", "q2", "q3"]
    # by hand, from the rankings `hyouka index search` gives
    expected: dict[str, list[float]] = {m: [] for m in ("hit_at_2", "recall_at_1", "recall_at_2", "mrr", "ndcg_at_2")}
    for query, gold in queries:
        found = runner.invoke(app, ["index", "search", "blog", query, "-k", "2", "--root", indexes, "--format", "json"])
        ranked = [h["doc_id"] for h in json.loads(found.output)]
        relevant = [d in gold for d in ranked]
        expected["hit_at_2"].append(float(any(relevant)))
        expected["recall_at_1"].append(sum(relevant[:1]) / len(gold))
        expected["recall_at_2"].append(sum(relevant) / len(gold))
        expected["mrr"].append(next((1 / (i + 1) for i, r in enumerate(relevant) if r), 0.0))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 2)))
        expected["ndcg_at_2"].append(sum(1 / math.log2(i + 2) for i, r in enumerate(relevant) if r) / ideal)
    assert list(result["aggregates"]) == list(expected)  # the defaults at k=2: recall@5 and @20 are deeper than k
    for name, values in expected.items():
        agg = result["aggregates"][name]
        assert agg["value"] == pytest.approx(sum(values) / len(values)) and agg["n_scored"] == 4
        assert [r["scores"][name] for r in result["rows"]] == pytest.approx(values)
    assert 0 < expected["mrr"].count(1.0) < 4  # the case is not trivial: some query misses its first rank
    table = runner.invoke(app, ["index", "eval", "blog", str(data), "-k", "2", "--root", indexes,
                                "--metrics", "mrr,precision@1"])
    assert table.exit_code == 0, table.output
    assert "mrr" in table.output and "precision_at_1" in table.output and "95% CI" in table.output
    assert "4 retrievals (4 from the cache)" in table.output  # the first evaluation cached them
    bad = runner.invoke(app, ["index", "eval", "blog", str(data), "--root", indexes, "--relevant-column", "nope"])
    assert bad.exit_code == 2 and "no relevant ids column 'nope'" in bad.output
