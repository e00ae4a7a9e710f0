"""The command line for judged evaluations: `hyouka eval`, `hyouka run --judge`, `hyouka pairwise`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.models.base import Message
from hyouka.store.store import Store
from tests.judge_fakes import ScriptedJudge, prompt_of

pytest.importorskip("fastapi")
from hyouka.testing.openai_server import serve_openai

runner = CliRunner()
QA = [
    {"question": "日本の首都は？", "ground_truth": "東京", "answer": "東京"},
    {"question": "1+1は？", "ground_truth": "2", "answer": "３"},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def _grade(messages: Sequence[Message]) -> str:
    return "スコア：５\n理由：正しい" if "## 評価対象の回答\n東京" in prompt_of(messages) else "評価：［［１］］"


def test_eval_judges_existing_predictions(tmp_path: Path, hyouka_home: Path) -> None:
    data = _jsonl(tmp_path / "qa.jsonl", QA)
    store = f"sqlite:///{tmp_path / 'r.sqlite'}"
    with serve_openai(ScriptedJudge(_grade), model_name="judge") as url:
        result = runner.invoke(app, [
            "eval", str(data), "--predictions-column", "answer", "--judge", "openai:judge", "--judge-base-url", url,
            "--metrics", "exact_match,char_f1,answer_correctness", "--store", store, "--rows",
            str(tmp_path / "rows.csv"), "--format", "json"])
    assert result.exit_code == 0, result.output
    (out,) = json.loads(result.stdout)
    assert out["metrics"]["answer_correctness"] == 3.0 and out["metrics"]["exact_match"] == 0.5
    assert out["judge"] == "openai:judge"
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert rows["answer_correctness/score"].tolist() == [5.0, 1.0]
    assert rows["answer_correctness/justification"][0] == "正しい"
    assert Store(store).get_run(out["run_id"])["kind"] == "judge"


def test_eval_compares_several_models(tmp_path: Path, hyouka_home: Path) -> None:
    data = _jsonl(tmp_path / "qa.jsonl", QA)
    a = _jsonl(tmp_path / "model-a.jsonl", [{"prompt": r["question"], "output": r["ground_truth"]} for r in QA])
    b = _jsonl(tmp_path / "model-b.jsonl", [{"prompt": r["question"], "output": "不明"} for r in QA])
    result = runner.invoke(app, ["eval", str(data), "--model", f"recorded:{a}", "--model", f"recorded:{b}",
                                 "--metrics", "exact_match,rouge_l", "--max-tokens", "64",
                                 "--store", f"sqlite:///{tmp_path / 'r.sqlite'}", "--format", "json"])
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout)
    assert first["metrics"]["exact_match"] == 1.0 and second["metrics"]["exact_match"] == 0.0
    assert first["model"].endswith("model-a.jsonl")


def test_eval_reports_bad_input(tmp_path: Path, hyouka_home: Path) -> None:
    data = _jsonl(tmp_path / "qa.jsonl", QA)
    result = runner.invoke(app, ["eval", str(data)])
    assert result.exit_code == 2 and "--predictions-column" in result.output
    result = runner.invoke(app, ["eval", str(data), "--predictions-column", "answer", "--metrics", "relevance",
                                 "--store", f"sqlite:///{tmp_path / 'r.sqlite'}"])
    assert result.exit_code == 2 and "needs a judge" in result.output


def test_run_ja_mt_bench_with_recorded_answers_and_judge(mt_bench_dir: Path, tmp_path: Path,
                                                         hyouka_home: Path) -> None:
    out = tmp_path / "out.json"
    result = runner.invoke(app, [
        "run", "--model", f"recorded:{mt_bench_dir / 'model_answer' / 'jslma-7b-ja-orca-6k-3ep.jsonl'}",
        "--tasks", "ja_mt_bench", "--judge", f"recorded:{mt_bench_dir / 'model_judgment' / 'gpt-4_single.jsonl'}",
        "--data-dir", str(mt_bench_dir), "--limit", "10", "--store", f"sqlite:///{tmp_path / 'r.sqlite'}",
        "-o", str(out)])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(out.read_text())["runs"]
    assert run["task"] == "ja_mt_bench" and run["mode"] == "single"
    assert run["aggregates"]["score"]["n_scored"] == 10 and run["aggregates"]["score"]["n_total"] == 20


def test_pairwise_on_mt_bench_reports_position_bias(mt_bench_dir: Path, tmp_path: Path, hyouka_home: Path) -> None:
    answers = mt_bench_dir / "model_answer"
    with serve_openai(ScriptedJudge(lambda m: "[[B]]"), model_name="judge") as url:
        result = runner.invoke(app, [
            "pairwise", "--models", f"recorded:{answers / 'gpt-4.jsonl'},recorded:{answers / 'gpt-4o.jsonl'}",
            "--data", str(mt_bench_dir), "--judge", "openai:judge", "--judge-base-url", url, "--limit", "2",
            "--store", f"sqlite:///{tmp_path / 'r.sqlite'}", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["win_rates"]["n_judged"] == 4 and out["win_rates"]["inconsistent"] == 4
    assert out["aggregates"]["inconsistency_rate"]["value"] == 1.0


def test_agreement_of_a_replayed_run_with_the_published_judgments(mt_bench_dir: Path, tmp_path: Path,
                                                                  hyouka_home: Path) -> None:
    store = f"sqlite:///{tmp_path / 'r.sqlite'}"
    judgments = mt_bench_dir / "model_judgment" / "gpt-4_single.jsonl"
    model = "japanese-stablelm-instruct-alpha-7b"
    run = runner.invoke(app, ["run", "--model", f"recorded:{mt_bench_dir / 'model_answer' / f'{model}.jsonl'}",
                              "--tasks", "ja_mt_bench", "--judge", f"recorded:{judgments}", "--data-dir",
                              str(mt_bench_dir), "--limit", "16", "--store", store, "-o", str(tmp_path / "o.json")])
    assert run.exit_code == 0, run.output
    run_id = json.loads((tmp_path / "o.json").read_text())["runs"][0]["run_id"]
    result = runner.invoke(app, ["agreement", run_id, str(judgments), "--model", model, "--data-dir",
                                 str(mt_bench_dir), "--store", store, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 16 and report["exact"] == 1.0 and report["n_only_b"] == 64
    assert set(report["per_category"]) == {"coding", "extraction"}  # the first 16 questions
