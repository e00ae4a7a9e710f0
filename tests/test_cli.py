"""The command line: runs, show, score and leaderboard read the store; run reports bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.store.store import Store
from tests.fakes import ScriptedModel

runner = CliRunner()


@pytest.fixture()
def filled_store(tmp_path: Path, jglue_dir: Path) -> str:
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    store = Store(url)
    for name, answer in (("model-a", "中立"), ("model-b", "含意")):
        model = ScriptedModel(answer=lambda _, a=answer: a)
        model.name = name
        hyouka.run(model, "jnli", mode="generate", limit=12, data_dir=jglue_dir, store=store, cache=False)
        hyouka.run(model, "jcommonsenseqa", limit=8, data_dir=jglue_dir, store=store, cache=False)
    return url


def test_runs_json_lists_every_run(filled_store: str) -> None:
    result = runner.invoke(app, ["runs", "--store", filled_store, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # one JSON document
    assert len(rows) == 4
    assert {r["task"] for r in rows} == {"jnli", "jcommonsenseqa"}
    assert all(r["status"] == "completed" for r in rows)


def test_show_json_has_prompt_output_answer_gold_metrics(filled_store: str) -> None:
    run_id = Store(filled_store).list_runs()[0]["id"]
    result = runner.invoke(app, ["show", run_id[:6], "--store", filled_store, "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    samples = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(samples) == 12
    document = json.loads(runner.invoke(app, ["show", run_id, "--store", filled_store, "--format", "json"]).stdout)
    assert document["run"]["id"] == run_id and document["samples"] == samples
    first = samples[0]
    assert first["prompt"].endswith("答え：") and first["output"] == "中立"
    assert first["extracted"] == "中立" and first["prediction"] == 2 and first["gold"] == 2
    assert first["metrics"]["acc"] == 1.0

    loglik_id = next(r for r in Store(filled_store).list_runs() if r["task"] == "jcommonsenseqa")["id"]
    result = runner.invoke(app, ["show", loglik_id, "--store", filled_store, "--format", "jsonl"])
    sample = json.loads(result.stdout.splitlines()[0])
    assert len(sample["choices"]) == 5 and len(sample["logprobs"]) == 5


def test_leaderboard_json_lists_probe_runs_as_partial_rows(filled_store: str) -> None:
    result = runner.invoke(app, ["leaderboard", "--store", filled_store, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    # jnli generated on 12 documents and jcommonsenseqa scored on 8: two settings, neither a full JGLUE run
    assert sorted((r["model"], r["setting"]) for r in rows) == [
        ("ScriptedModel:model-a", "0-shot plain generate limit 12"),
        ("ScriptedModel:model-a", "0-shot plain loglikelihood limit 8"),
        ("ScriptedModel:model-b", "0-shot plain generate limit 12"),
        ("ScriptedModel:model-b", "0-shot plain loglikelihood limit 8"),
    ]
    assert all(r["table"] == "suite jglue" and r["partial"] and r["average"] is None for r in rows)
    assert all(r["jnli"]["metric"] == "acc" for r in rows if r["jnli"])
    table = runner.invoke(app, ["leaderboard", "--store", filled_store], env={"COLUMNS": "250"})
    assert "suite jglue" in table.stdout and "partial: no jcommonsenseqa, jsts, jsquad, marc_ja" in table.stdout


def test_score_recomputes_without_a_model(filled_store: str) -> None:
    run = Store(filled_store).list_runs()[0]
    result = runner.invoke(app, ["score", run["id"], "--store", filled_store, "--format", "json"])
    assert result.exit_code == 0, result.output
    rescored = json.loads(result.stdout)
    assert rescored["acc"]["value"] == Store(filled_store).aggregates(run["id"])["acc"]["value"]


def test_unknown_run_and_bad_specs_fail_clearly(filled_store: str, hyouka_home: Path) -> None:
    result = runner.invoke(app, ["show", "zzzz", "--store", filled_store])
    assert result.exit_code == 2 and "no run 'zzzz'" in result.output
    result = runner.invoke(app, ["run", "--model", "vllm9:x", "--tasks", "jnli"])
    assert result.exit_code == 2 and "known backends" in result.output
    result = runner.invoke(app, ["run", "--model", "openai:x", "--tasks", "jnli", "--prompt-family", "chatml"])
    assert result.exit_code == 2 and "alpaca" in result.output  # refused before any model is built
    result = runner.invoke(app, ["run", "--model", "openai:x", "--tasks", "jnlii"])
    assert result.exit_code == 2 and "jcommonsenseqa" in result.output


def test_tasks_command_lists_tasks_and_families() -> None:
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0
    for name in ("jcommonsenseqa", "jsquad", "suite jglue", "alpaca"):
        assert name in result.stdout


def test_run_refuses_unknown_mode_and_bad_limit(hyouka_home: Path, jglue_dir: Path) -> None:
    for extra, word in ((["--mode", "generat"], "'generat'"), (["--limit", "0"], "--limit")):
        result = runner.invoke(app, ["run", "--model", "recorded:none.jsonl", "--tasks", "jnli",
                                     "--data-dir", str(jglue_dir), *extra])
        assert result.exit_code == 2 and word in result.output, result.output


def test_run_passes_tokenizer_to_openai_models(hyouka_home: Path, jglue_dir: Path) -> None:
    from hyouka.testing.openai_server import EchoModel, serve_openai

    missing = "./no-tok"
    with serve_openai(EchoModel()) as url:
        result = runner.invoke(app, ["run", "--model", "openai:echo", "--base-url", url, "--tasks", "jcommonsenseqa",
                                     "--limit", "1", "--data-dir", str(jglue_dir), "--tokenizer", missing])
    assert result.exit_code != 0 and f"--tokenizer {missing}" in result.output, result.output
    result = runner.invoke(app, ["run", "--model", "recorded:none.jsonl", "--tasks", "jnli", "--tokenizer", "x",
                                 "--data-dir", str(jglue_dir)])
    assert result.exit_code != 0 and "tokenizer" in result.output, result.output


def test_run_says_a_partial_suite_has_no_average(hyouka_home: Path, jglue_dir: Path) -> None:
    from hyouka.testing.openai_server import EchoModel, serve_openai

    with serve_openai(EchoModel()) as url:
        result = runner.invoke(app, ["run", "--model", "openai:echo", "--base-url", url, "--tasks", "jglue",
                                     "--mode", "generate", "--limit", "2", "--data-dir", str(jglue_dir)],
                               env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("jglue:"))
    assert line.startswith("jglue: no average (partial: ") and "missing" in line and "marc_ja" in line, line
