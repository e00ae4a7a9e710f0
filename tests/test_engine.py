"""The runner: records, failures, resume without repeated calls, cache re-use, rescoring."""

from __future__ import annotations

from pathlib import Path

import pytest

import hyouka
from hyouka.engine.cache import ResponseCache
from hyouka.engine.rescore import rescore
from hyouka.models.base import Capabilities, LoglikelihoodRequest, request_key
from hyouka.store.store import Store
from tests.fakes import ScriptedModel


def test_loglikelihood_run_records_every_sample(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    model = ScriptedModel()
    result = hyouka.run(model, "jcommonsenseqa", num_fewshot=2, limit=30, data_dir=jglue_dir, store=store, cache=cache)
    run = result["jcommonsenseqa"]
    assert run.mode == "loglikelihood" and run.n_samples == 30
    assert len(model.calls) == 150  # five choices each
    samples = store.samples(run.run_id)
    assert [s["sample_index"] for s in samples] == list(range(30))
    first = samples[0]
    assert len(first["details"]["logprobs"]) == 5
    assert first["prediction"] == max(range(5), key=first["details"]["logprobs"].__getitem__)
    assert first["metrics"]["acc"] == float(first["prediction"] == first["reference"])
    acc = run.aggregates["acc"]
    assert acc["n_scored"] == acc["n_total"] == 30
    assert acc["value"] == pytest.approx(sum(s["metrics"]["acc"] for s in samples) / 30)
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    stored = store.get_run(run.run_id)
    assert stored["status"] == "completed" and stored["task_hash"] and stored["config"]["num_fewshot"] == 2
    assert stored["versions"]["python"]


def test_interrupted_run_resumes_without_repeating_calls(
    jglue_dir: Path, store: Store, cache: ResponseCache
) -> None:
    killer = ScriptedModel(interrupt_after=60, batch_size=10)
    with pytest.raises(KeyboardInterrupt):
        hyouka.run(killer, "jcommonsenseqa", limit=40, data_dir=jglue_dir, store=store, cache=cache)
    (interrupted,) = store.list_runs()
    assert interrupted["status"] == "interrupted"
    finished = store.finished_indices(interrupted["id"])
    assert 0 < len(finished) < 40

    model = ScriptedModel(batch_size=10)
    result = hyouka.run(model, "jcommonsenseqa", limit=40, data_dir=jglue_dir, store=store, cache=cache)
    run = result["jcommonsenseqa"]
    assert run.run_id == interrupted["id"] and run.resumed
    first_calls = {request_key(model.identity(), r) for r in killer.calls}
    second_calls = [request_key(model.identity(), r) for r in model.calls]
    assert not first_calls & set(second_calls)  # no request paid twice
    assert len(first_calls) + len(second_calls) == 200
    assert len(store.samples(run.run_id)) == 40
    assert store.get_run(run.run_id)["status"] == "completed"


def test_failed_requests_mark_samples_and_run_completes(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    def fail(request: object) -> bool:
        return isinstance(request, LoglikelihoodRequest) and "マザーボード" in request.continuation

    model = ScriptedModel(fail=fail)
    result = hyouka.run(model, "jcommonsenseqa", limit=20, data_dir=jglue_dir, store=store, cache=cache)
    run = result["jcommonsenseqa"]
    samples = store.samples(run.run_id)
    failed = [s for s in samples if s["status"] == "api_error"]
    assert failed and all("500" in s["error"] for s in failed)
    assert run.aggregates["acc"]["n_scored"] == 20 - len(failed)
    assert run.aggregates["acc"]["n_total"] == 20
    assert store.get_run(run.run_id)["status"] == "completed"

    # the same command again retries only the failed samples' missing answers
    healthy = ScriptedModel()
    again = hyouka.run(healthy, "jcommonsenseqa", limit=20, data_dir=jglue_dir, store=store, cache=cache)
    assert all(isinstance(r, LoglikelihoodRequest) and "マザーボード" in r.continuation for r in healthy.calls)
    assert again["jcommonsenseqa"].aggregates["acc"]["n_scored"] == 20


def test_completed_run_again_is_served_from_cache(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    first = hyouka.run(ScriptedModel(), "jnli", limit=25, data_dir=jglue_dir, store=store, cache=cache)
    model = ScriptedModel()
    second = hyouka.run(model, "jnli", limit=25, data_dir=jglue_dir, store=store, cache=cache)
    assert model.calls == []
    assert second["jnli"].run_id != first["jnli"].run_id
    assert second["jnli"].cache_hits == 75
    assert second["jnli"].aggregates["acc"]["value"] == first["jnli"].aggregates["acc"]["value"]


def test_garbage_is_collected_after_long_model_work_not_after_a_cached_run(
    jglue_dir: Path, store: Store, cache: ResponseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    import hyouka.api

    full_passes: list[int] = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: full_passes.append(1) or collect(*args))
    options = {"limit": 10, "data_dir": jglue_dir, "store": store, "cache": cache}
    assert hyouka.run(ScriptedModel(), "jnli", **options)["jnli"].model_calls == 30
    assert full_passes == []  # the scripted model answers in milliseconds: too short a run to pay for it
    monkeypatch.setattr(hyouka.api, "COLLECT_AFTER_S", 0.0)
    assert hyouka.run(ScriptedModel(), "jsts", **options)["jsts"].model_calls == 10
    assert len(full_passes) == 1  # paid once, after the model calls
    assert hyouka.run(ScriptedModel(), "jsts", **options)["jsts"].model_calls == 0
    assert len(full_passes) == 1  # a run served from the cache pays none


def test_generation_scoring_and_format_errors(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    answers = iter(["中立", "含意です", "たぶん", "矛盾"] * 10)
    model = ScriptedModel(answer=lambda prompt: next(answers))
    result = hyouka.run(model, "jnli", mode="generate", limit=20, data_dir=jglue_dir, store=store, cache=cache)
    run = result["jnli"]
    assert run.mode == "generate"
    assert run.aggregates["format_error_rate"]["value"] == pytest.approx(0.25)
    samples = store.samples(run.run_id)
    assert {s["status"] for s in samples} == {"ok", "format_error"}
    assert samples[2]["prediction"] is None and samples[2]["output"] == "たぶん"
    assert samples[1]["prediction"] == 0 and samples[1]["extracted"] == "含意です"


def test_chat_only_model_gets_chat_requests(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    model = ScriptedModel(answer=lambda _: "3.5", capabilities=Capabilities(chat=True))
    result = hyouka.run(model, "jsts", limit=10, data_dir=jglue_dir, store=store, cache=cache)
    assert all(r.kind == "chat" for r in model.calls)
    assert result["jsts"].aggregates["format_error_rate"]["value"] == 0.0
    with pytest.raises(ValueError, match="--mode generate"):
        hyouka.run(model, "jcommonsenseqa", mode="loglikelihood", limit=5, data_dir=jglue_dir, store=store)


def test_rescore_reproduces_aggregates(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    result = hyouka.run(ScriptedModel(answer=lambda _: "小笠原諸島"), "jsquad", num_fewshot=1, limit=15,
                        data_dir=jglue_dir, store=store, cache=cache)
    run = result["jsquad"]
    before = run.aggregates
    with store.session() as s, s.begin():  # tamper with the stored scores
        from hyouka.store.schema import AggregateRow

        s.query(AggregateRow).filter_by(run_id=run.run_id).delete()
    after = rescore(store, run.run_id)
    assert after["char_f1"]["value"] == pytest.approx(before["char_f1"]["value"])
    assert after["exact_match"]["value"] == pytest.approx(before["exact_match"]["value"])
    assert before["exact_match"]["value"] > 0  # the first questions' answer is 小笠原諸島


def test_suite_skips_tasks_without_data(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    result = hyouka.run(ScriptedModel(answer=lambda _: "2"), "jglue", limit=5, data_dir=jglue_dir,
                        store=store, cache=cache)
    assert [r.task for r in result.runs] == ["jcommonsenseqa", "jnli", "jsts", "jsquad"]
    assert "marc_ja" in result.skipped and "no longer distributed" in result.skipped["marc_ja"]
    suite = result.suite_scores["jglue"]
    # a constant answer gives JSTS no correlation; with JSTS and MARC-ja missing there is no suite
    # average (a mean over another subset of tasks would not compare), only what it covers
    assert result["jsts"].aggregates["pearson"]["value"] is None
    assert result["jsts"].aggregates["pearson"]["note"] == "predictions is constant"
    assert suite["tasks"] == ["jcommonsenseqa", "jnli", "jsquad"] and suite["n_tasks"] == 5
    assert suite["missing"] == ["jsts", "marc_ja"] and not suite["complete"] and suite["score"] is None


def test_unknown_mode_and_bad_limit_are_refused(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    model = ScriptedModel()
    with pytest.raises(ValueError, match="generat"):  # a typo must not silently score by log-likelihood
        hyouka.run(model, "jnli", mode="generat", limit=5, data_dir=jglue_dir, store=store, cache=cache)
    for limit in (0, -3):  # neither the whole split nor all-but-the-last-three
        with pytest.raises(ValueError, match="limit"):
            hyouka.run(model, "jnli", limit=limit, data_dir=jglue_dir, store=store, cache=cache)
    assert model.calls == [] and store.list_runs() == []


def test_task_file_run_can_be_rescored_and_resumed(
    jglue_dir: Path, store: Store, cache: ResponseCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyouka.tasks.registry import BUILTIN_DIR

    task_file = tmp_path / "tasks" / "my_jnli.yaml"
    task_file.parent.mkdir()
    task_file.write_text((BUILTIN_DIR / "jnli.yaml").read_text(encoding="utf-8").replace("task: jnli", "task: my_jnli"),
                         encoding="utf-8")
    killer = ScriptedModel(interrupt_after=30, batch_size=10)
    with pytest.raises(KeyboardInterrupt):
        hyouka.run(killer, str(task_file), limit=20, data_dir=jglue_dir, store=store, cache=cache)
    (interrupted,) = store.list_runs()
    assert interrupted["task"] == "my_jnli"

    monkeypatch.chdir(tmp_path / "tasks")  # the stored source must not depend on the working directory
    monkeypatch.setattr("hyouka.api.load_model", lambda spec, **options: ScriptedModel())
    resumed = hyouka.run("scripted:x", [], resume=interrupted["id"], store=store, cache=cache)
    run = resumed["my_jnli"]
    assert run.run_id == interrupted["id"] and run.aggregates["acc"]["n_scored"] == 20
    assert rescore(store, run.run_id)["acc"]["value"] == pytest.approx(run.aggregates["acc"]["value"])


def test_credentials_in_base_url_never_reach_the_store(jglue_dir: Path, store: Store, cache: ResponseCache) -> None:
    url = "https://alice:s3cret-pass@llm.example.com/v1?api_key=s3cret-query"
    result = hyouka.run(ScriptedModel(), "jnli", limit=3, data_dir=jglue_dir, store=store, cache=cache,
                        base_url=url, api_key="s3cret-key", api_key_env="MY_KEY")
    stored = store.get_run(result["jnli"].run_id)
    blob = repr(stored)
    assert "s3cret" not in blob
    assert stored["config"]["model_options"] == {"base_url": "https://llm.example.com/v1", "api_key_env": "MY_KEY"}


def test_score_and_resume_refuse_runs_not_made_from_a_task(tmp_path: Path, store: Store) -> None:
    from hyouka.evaluation.core import evaluate

    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "日本の首都は？", "reference": "東京", "prediction": "東京"}\n', encoding="utf-8")
    result = evaluate(data=data, predictions="prediction", targets="reference", inputs="question",
                      metrics="exact_match", store=store, cache=False)
    run_id = result.run_id
    with pytest.raises(ValueError, match="hyouka eval"):
        rescore(store, run_id)
    with pytest.raises(ValueError, match="hyouka eval"):
        hyouka.run("scripted:x", [], resume=run_id, store=store, cache=False)


def test_store_json_has_no_nan_for_postgresql(jglue_dir: Path, tmp_path: Path) -> None:
    import json
    import math

    from hyouka.jsonio import dumps

    # PostgreSQL's json type rejects NaN and Infinity (SQLite stores them): they become null
    blob = dumps({"logprobs": [float("nan"), -math.inf, -1.5], "n": 2})
    assert json.loads(dumps({"a": "評価"})) == {"a": "評価"} and "評価" in dumps({"a": "評価"})
    assert json.loads(blob) == {"logprobs": [None, None, -1.5], "n": 2}
    # what orjson cannot take (integers past 64 bits) goes through the standard library, NaN still null
    assert json.loads(dumps({"big": 2**70, "x": float("nan")})) == {"big": 2**70, "x": None}

    # a sample whose stored logprob is null still rescores (as the least likely choice)
    from hyouka.models.base import Response
    from hyouka.tasks.registry import load_task
    from hyouka.tasks.task import Task

    task = Task(load_task("jnli"), data_dir=jglue_dir)
    doc = task.docs()[0]
    scored = task.score(doc, "loglikelihood", [Response(logprob=None), Response(logprob=-2.0), Response(logprob=-3.0)])
    assert scored.prediction == 1 and scored.status == "ok"


def test_batched_cache_keys_equal_one_by_one_keys() -> None:
    from hyouka.models.base import ChatRequest, GenerateRequest, GenerationParams, Message, request_keys

    identity = {"backend": "hf", "model": "tiny", "dtype": "float32"}
    contexts = ['質問："引用"\\ と\n改行\t\x01😀', "", "plain context"]
    requests = [LoglikelihoodRequest(c, cont) for c in contexts for cont in ("答え", ' "x"\\', "", "\u2028")]
    requests += [
        GenerateRequest("プロンプト", GenerationParams(max_tokens=8, temperature=1e-5, stop=("\n",))),
        ChatRequest((Message("user", "こんにちは"),), tags=(("turn", "1"),)),
    ]
    keys = request_keys(identity, requests)
    assert keys == [request_key(identity, r) for r in requests]
    assert len(set(keys)) == len(requests)


def test_cache_written_by_an_earlier_version_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    from hyouka.engine.cache import ResponseCache
    from hyouka.models.base import Response

    path = tmp_path / "cache.sqlite"
    old = sqlite3.connect(path)  # the layout before WITHOUT ROWID
    old.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, "
                "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    old.execute("INSERT INTO responses (key, response) VALUES (?, ?)", ("k1", '{"logprob": -1.5, "is_greedy": true}'))
    old.commit()
    old.close()

    cache = ResponseCache(path)
    assert cache.get_many(["k1", "k2"]) == {"k1": Response(logprob=-1.5, is_greedy=True)}
    cache.put("k2", Response(text="二"))
    cache.close()
    reopened = ResponseCache(path)
    assert len(reopened) == 2 and reopened.get_many(["k2"])["k2"].text == "二"
    schema = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master WHERE name='responses'").fetchone()[0]
    assert "WITHOUT ROWID" in schema


def test_compact_response_keeps_every_set_field() -> None:
    from dataclasses import fields

    from hyouka.models.base import Response

    values = {"text": "答え", "logprob": -1.5, "is_greedy": False, "prompt_tokens": 12, "completion_tokens": 0,
              "latency_s": 0.25, "ttft_s": 0.05, "finish_reason": "stop", "error": "boom", "error_type": "api_error",
              "cached": True}
    assert set(values) == {f.name for f in fields(Response)}  # a new field must be added here and to _compact
    full = Response(**values)
    assert full.to_dict(compact=True) == values and Response.from_dict(full.to_dict(compact=True)) == full
    assert Response(logprob=-2.0, is_greedy=False).to_dict(compact=True) == {"logprob": -2.0, "is_greedy": False}


def test_sqlite_driver_inserts_store_what_the_core_insert_stores(tmp_path: Path) -> None:
    from hyouka.store.store import Store

    records = [
        {"sample_index": 0, "doc_id": "a", "doc": {"q": "問"}, "prompt": "p", "requests": [{"kind": "generate"}],
         "responses": [{"text": "答", "latency_s": 0.5}], "output": "答", "extracted": "答", "prediction": None,
         "reference": ["答"], "metrics": {"em": 1.0}, "details": {"nan": float("nan")}, "status": "ok",
         "error": None, "latency_s": 0.5, "prompt_tokens": 3, "completion_tokens": 1, "cost_usd": None},
    ]
    records.append({**dict.fromkeys(records[0]), "sample_index": 1, "doc_id": "b", "prompt": "", "status": "api_error",
                    "error": "boom"})  # a failed sample: every value unset
    stored = []
    for driver_inserts in (True, False):
        store = Store(f"sqlite:///{tmp_path / f'{driver_inserts}.sqlite'}")
        store._driver_inserts = driver_inserts
        run_id = store.create_run(model="m", task="t", config={}, config_hash="h", model_identity={}, versions={})
        store.write_samples(run_id, records, replace=False)
        stored.append([{k: v for k, v in s.items() if k not in ("id", "run_id")} for s in store.samples(run_id)])
    assert stored[0] == stored[1]
    assert stored[0][0]["details"] == {"nan": None} and stored[0][1]["doc"] is None
