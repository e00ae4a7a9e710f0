"""RAG end to end: retrieve, prompt, answer with the tiny model, judge over HTTP, store, and resume.

The corpus and questions are JSQuAD's (valid); the judge is a scripted judge behind the local
OpenAI-compatible server, reached by the real ``openai`` client. A ``hyouka run --tasks rag:…``
process killed with SIGKILL and run again pays no embedding, retrieval or answer twice, and only
the judgments in flight or not yet flushed to the cache (as every run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hyouka
import hyouka.api
import hyouka.engine.budget
import hyouka.evaluation.backends
from hyouka.models.base import Message
from hyouka.models.registry import load_model
from hyouka.rag.documents import Document
from hyouka.rag.index import Index
from hyouka.store.store import Store
from hyouka.testing.openai_server import EchoModel, ServerStats, serve_openai
from tests.judge_fakes import ScriptedJudge, prompt_of

pytest.importorskip("bm25s")
SRC = Path(__file__).resolve().parents[1] / "src"
METRICS = "answer_correctness,faithfulness,relevance,rouge_l,context_recall"
SCORES = {"回答の正確さ": 4, "文脈への忠実性": 5, "文脈を踏まえた適合性": 3, "検索された文脈の再現率": 2}


def _judge(messages: tuple[Message, ...]) -> str:
    prompt = prompt_of(messages)
    score = next((s for title, s in SCORES.items() if title in prompt), 1)
    return json.dumps({"justification": "根拠", "score": score}, ensure_ascii=False)


@pytest.fixture(scope="module")
def corpus(jglue_dir: Path) -> tuple[list[Document], list[dict]]:
    data = json.loads((jglue_dir / "jsquad-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8"))
    docs, rows = [], []
    for article in data["data"][:6]:
        for paragraph in article["paragraphs"]:
            doc_id = f"p{len(docs)}"
            title, _, text = paragraph["context"].partition(" [SEP] ")
            docs.append(Document(id=doc_id, title=title, text=text))
            qa = paragraph["qas"][0]
            rows.append({"id": qa["id"], "question": qa["question"], "ground_truth": qa["answers"][0]["text"],
                         "relevant_doc_ids": [doc_id]})
    return docs, rows


def test_rag_evaluation_stores_chunks_answers_and_judgments(corpus, tiny_model_dir: Path, tmp_path: Path) -> None:
    docs, rows = corpus
    rows = rows[:12]
    index = Index.build(docs, "jsquad", root=tmp_path / "indexes", cache=False)
    judge = ScriptedJudge(_judge)
    store, cache = f"sqlite:///{tmp_path / 'results.sqlite'}", tmp_path / "cache.sqlite"
    with serve_openai(judge, model_name="judge") as url:
        def evaluate() -> hyouka.evaluation.EvaluationResult:
            return hyouka.evaluate(f"hf:{tiny_model_dir}", rows, index=index, k=4, judge="openai:judge",
                                   judge_options={"base_url": url}, max_tokens=8, store=store, cache=cache,
                                   metrics=[*METRICS.split(","), "recall_at_k", "mrr"], dtype="float32",
                                   device="cpu")

        result = evaluate()
        n_judged = len(judge.conversations)
        again = evaluate()  # the same evaluation again: everything from the cache
    assert n_judged == 4 * len(rows)  # four judge metrics per row
    assert len(judge.conversations) == n_judged
    assert again.calls["model"]["model_calls"] == 0 and again.calls["retrieval"]["model_calls"] == 0
    assert sum(c["model_calls"] for name, c in again.calls.items() if name.startswith("judge")) == 0
    assert again.metrics == result.metrics

    samples = Store(store).samples(result.run_id)
    assert len(samples) == len(rows)
    hits_at_4 = []
    for sample, row in zip(samples, rows, strict=True):
        retrieval = sample["details"]["retrieval"]
        assert retrieval["status"] == "ok" and len(retrieval["chunks"]) == 4
        assert retrieval["chunk_ids"] == [c["id"] for c in retrieval["chunks"]]
        assert [c["rank"] for c in retrieval["chunks"]] == [1, 2, 3, 4]
        for chunk in retrieval["chunks"]:  # the chunk, its document, title and span as indexed
            doc = next(d for d in docs if d.id == chunk["doc_id"])
            assert doc.text[chunk["start"]:chunk["end"]] == chunk["text"] and chunk["title"] == doc.title
            assert chunk["text"] in sample["prompt"]
        assert row["question"] in sample["prompt"] and "参考資料1" in sample["prompt"]
        assert sample["details"]["answer"]["text"] == sample["prediction"]
        assert sample["status"] == "ok"
        judged = sample["details"]["judge"]
        assert {m: judged[m]["score"] for m in judged} == {"answer_correctness": 4, "faithfulness": 5,
                                                            "relevance": 3, "context_recall": 2}
        assert all(judged[m]["status"] == "ok" for m in judged)
        hits_at_4.append(float(row["relevant_doc_ids"][0] in retrieval["doc_ids"]))
    assert result.aggregates["recall_at_4"]["value"] == pytest.approx(sum(hits_at_4) / len(rows))
    assert result.aggregates["faithfulness"]["value"] == 5.0 and "rouge_l" in result.metrics
    # the judges saw the retrieved chunks as the context; context_recall saw the ground truth, not the answer
    recall_prompts = [prompt_of(c) for c in judge.conversations if "検索された文脈の再現率" in prompt_of(c)]
    assert len(recall_prompts) == len(rows)
    first = samples[0]
    assert any(first["reference"] in p and first["details"]["retrieval"]["chunks"][0]["text"] in p
               for p in recall_prompts)
    assert not any("評価対象の回答" in p for p in recall_prompts)
    run = Store(store).get_run(result.run_id)
    assert run["config"]["rag"]["index"]["hash"] == index.hash and run["config"]["rag"]["k"] == 4
    assert run["stats"]["retrieval"]["n_calls"] == len(rows)
    assert run["stats"]["retrieval"]["latency_s"]["mean"] > 0


@pytest.mark.slow
def test_a_killed_rag_run_pays_no_call_twice(corpus, tmp_path: Path) -> None:
    docs, rows = corpus
    rows = rows[:80]
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    model_stats, judge_stats = ServerStats(), ServerStats()
    store_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    env = {**os.environ, "HYOUKA_HOME": str(tmp_path / "home"), "HYOUKA_INDEX_DIR": str(tmp_path / "indexes"),
           "OPENAI_API_KEY": "sk-test", "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "COLUMNS": "200"}
    env.pop("HYOUKA_STORE_URL", None)
    env.pop("HYOUKA_CACHE", None)
    with serve_openai(EchoModel(reply="答えです"), model_name="echo", stats=model_stats) as model_url, \
            serve_openai(ScriptedJudge(_judge), model_name="judge", delay_s=0.05, stats=judge_stats) as judge_url:
        Index.build(docs, "jsquad", root=tmp_path / "indexes", retriever="hybrid", embedder="openai:emb",
                    embedder_options={"base_url": model_url}, cache=False)
        built = model_stats.by_path["embeddings"]
        cmd = [sys.executable, "-c", "from hyouka.cli import app; app()", "run", "--model", "openai:echo",
               "--base-url", model_url, "--tasks", f"rag:{data}", "--index", "jsquad", "-k", "4",
               "--judge", "openai:judge", "--judge-base-url", judge_url, "--metrics", f"{METRICS},recall_at_k",
               "--max-tokens", "8", "--concurrency", "4", "--store", store_url]
        proc = subprocess.Popen(cmd, env=env, stdout=(tmp_path / "killed.log").open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while judge_stats.requests < 40:
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=30)
        first_judged = judge_stats.requests
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"rag:\S+qa\.jsonl\s+rag\s+recall_at_4", again.stdout), again.stdout
    (run,) = Store(store_url).list_runs()  # the killed run, taken over and completed
    assert run["status"] == "completed"
    samples = Store(store_url).samples(run["id"])
    assert len(samples) == len(rows) and all(s["status"] == "ok" for s in samples)
    assert all(len(s["details"]["judge"]) == 4 for s in samples)
    # the questions embedded in batches of 64, once: in the first process, none in the second
    assert model_stats.by_path["embeddings"] == built + -(-len(rows) // 64)
    assert all(n == 1 for (path, _), n in model_stats.attempts.items() if path == "embeddings")
    # every distinct RAG prompt answered once (two questions of the data retrieve the same chunks and ask alike)
    assert model_stats.by_path["chat/completions"] == len({s["prompt"] for s in samples})
    assert all(n == 1 for (path, _), n in model_stats.attempts.items() if path == "chat/completions")
    repaid = sum(n - 1 for (path, _), n in judge_stats.attempts.items() if n > 1)
    assert first_judged < 4 * len(rows) and repaid <= 24  # what was in flight or not yet flushed at the kill
    assert Store(store_url).get_run(run["id"])["stats"]["retrieval"]["calls"]["model_calls"] == 0  # all cached


def _prices(path: Path, **models: dict) -> Path:
    path.write_text(json.dumps({"version": "test", "models": models}), encoding="utf-8")
    return path


def test_a_dry_run_prices_rag_tasks_with_the_prompts_the_run_sends(corpus, tmp_path: Path, jglue_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    docs, rows = corpus
    rows = rows[:15]
    Index.build(docs, "jsquad", root=tmp_path / "indexes", cache=False)
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    prices = _prices(tmp_path / "prices.json", **{"openai:echo": {"input": 1.0, "output": 2.0},
                                                  "openai:judge": {"input": 3.0, "output": 4.0}})
    model_stats, judge_stats = ServerStats(), ServerStats()
    with serve_openai(EchoModel(reply="答えです"), model_name="echo", stats=model_stats) as url, \
            serve_openai(ScriptedJudge(_judge), model_name="judge", stats=judge_stats) as judge_url:
        kwargs = dict(index=str(tmp_path / "indexes" / "jsquad"), k=3, metrics="answer_correctness,rouge_l",
                      judge="openai:judge", judge_options={"base_url": judge_url}, num_fewshot=2, max_tokens=8,
                      store=f"sqlite:///{tmp_path / 'results.sqlite'}", cache=tmp_path / "cache.sqlite",
                      prices=prices, base_url=url)
        plan = hyouka.api.estimate("openai:echo", f"rag:{data}", **kwargs)
        assert model_stats.requests == judge_stats.requests == 0  # BM25 is searched here; nothing is called
        by_mode = {t.mode: t for t in plan.tasks}
        assert set(by_mode) == {"rag", "judge openai:judge"}
        assert by_mode["rag"].note.startswith("retrieval: 15 searched (prompts exact")
        assert by_mode["rag"].n_calls == by_mode["judge openai:judge"].n_calls == len(rows)
        # the same function prices the ladder's retrieval rungs
        ladder = hyouka.ladder(["openai:echo"], f"rag:{data}", rungs="few-shot:2+rag:3", metric="answer_correctness",
                               dry_run=True, **{k: v for k, v in kwargs.items() if k not in ("k", "num_fewshot",
                                                                                             "metrics", "max_tokens")},
                               max_tokens=8)
        (cell,) = ladder.cells
        assert cell.estimate["n_calls"] == len(rows) and cell.estimate["cost_usd"] == pytest.approx(
            by_mode["rag"].cost_usd)
        loaded: list[str] = []

        def counting(spec: str, **options):
            loaded.append(spec)
            return load_model(spec, **options)

        for module in (hyouka.api, hyouka.evaluation.backends):
            monkeypatch.setattr(module, "load_model", counting)
        jnli = tmp_path / "jnli.jsonl"
        jnli.write_text("".join((jglue_dir / "jnli-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8")
                                .splitlines(keepends=True)[:3]), encoding="utf-8")
        result = hyouka.run("openai:echo", f"jnli,rag:{data}", data_files={"jnli": jnli}, mode="generate",
                            **kwargs)
    assert sorted(loaded) == ["openai:echo", "openai:judge"]  # one backend each, for every task of the run
    # the planned prompts are those the model received: the estimate's tokens are the prompts' own
    sent = [prompt for (path, prompt), _ in model_stats.attempts.items() if path == "chat/completions"
            and "参考資料" in prompt]
    assert len(sent) == len(rows)
    from hyouka.engine.accounting import estimate_tokens

    assert by_mode["rag"].prompt_tokens == sum(estimate_tokens(p) for p in sent)
    samples = Store(kwargs["store"]).samples(result[f"rag:{data}"].run_id)
    assert all(any(p.endswith(s["prompt"]) for p in sent) for s in samples)  # after the two solved rows
    # what the calls cost stays within the upper estimate (completions counted at max_tokens there)
    paid = sum(1.0 * s["details"]["answer"]["prompt_tokens"] / 1e6 + 2.0 * s["details"]["answer"]["completion_tokens"]
               / 1e6 for s in samples)
    assert 0 < paid <= by_mode["rag"].cost_usd


def test_max_cost_holds_rag_tasks_before_and_during_the_run(corpus, tmp_path: Path) -> None:
    docs, rows = corpus
    rows = rows[:40]
    Index.build(docs, "jsquad", root=tmp_path / "indexes", cache=False)
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    stats = ServerStats()
    store = f"sqlite:///{tmp_path / 'results.sqlite'}"
    with serve_openai(EchoModel(reply="答えです"), model_name="echo", stats=stats, delay_s=0.02) as url:
        kwargs = dict(index=str(tmp_path / "indexes" / "jsquad"), k=2, metrics="rouge_l", max_tokens=8, store=store,
                      cache=tmp_path / "cache.sqlite", base_url=url, concurrency=1)
        per_token = _prices(tmp_path / "tokens.json", **{"openai:echo": {"input": 100.0, "output": 100.0}})
        plan = hyouka.api.estimate("openai:echo", f"rag:{data}", prices=per_token, **kwargs)
        with pytest.raises(hyouka.engine.budget.BudgetExceededError, match="above --max-cost"):
            hyouka.run("openai:echo", f"rag:{data}", prices=per_token, max_cost=plan.cost_usd / 2, **kwargs)
        assert stats.requests == 0  # refused before any call: the rag task's estimate is in the run's
        # priced by the hour: no estimate before it runs, the ceiling holds live on the run's one budget
        hourly = _prices(tmp_path / "hourly.json", **{"openai:echo": {"gpu_hour": 3600.0}})  # $1 per second
        with pytest.raises(hyouka.engine.budget.BudgetExceededError):
            hyouka.run("openai:echo", f"rag:{data}", prices=hourly, max_cost=0.3, **kwargs)
    (run,) = Store(store).list_runs()
    assert run["status"] == "interrupted"
    assert 0 < stats.requests < len(rows)  # stopped before spending crossed $0.30
