"""Bad and hostile input through the real CLI: each gets a message naming file, line or flag, and its exit code."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.testing.openai_server import EchoModel, Fault, ServerStats, fail_matching, serve_openai

runner = CliRunner()
NO_SERVER = "http://127.0.0.1:9/v1"  # the discard port: a dry run never calls it


def _flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def _run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def _jcqa_line(qid: int, label: object) -> str:
    doc = {"q_id": qid, "question": f"質問{qid}は？", **{f"choice{i}": f"選択肢{i}" for i in range(5)}, "label": label}
    return json.dumps(doc, ensure_ascii=False)


def _write_task(path: Path, **dataset: object) -> Path:
    path.write_text(yaml.safe_dump({
        "task": "mytask", "version": "1", "dataset": {"id_field": "id", **dataset},
        "output_type": "generate_until", "modes": ["generate"], "instruction": "答えよ",
        "doc_to_text": "{{question}}", "doc_to_target": "{{answer}}", "metric_list": [{"metric": "exact_match"}],
    }, allow_unicode=True), encoding="utf-8")
    return path


def _write_docs(path: Path, n: int = 3, encoding: str = "utf-8") -> Path:
    lines = [json.dumps({"id": f"d{i}", "question": f"日本の首都{i}", "answer": "東京"}, ensure_ascii=False)
             for i in range(n)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _dry(task: str, *extra: str) -> list[str]:
    return ["run", "--dry-run", "--model", "openai:m", "--base-url", NO_SERVER, "--tasks", task, *extra]


# --------------------------------------------------------------------------- 2. paths in task files


def test_task_file_paths_cannot_leave_the_data_folder(tmp_path: Path, hyouka_home: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    secret = _write_docs(tmp_path / "private.jsonl")  # readable, well-formed, outside the data folder
    for name, dataset in {
        "dotdot": {"local_dir": "..", "files": {"valid": "private.jsonl"}},
        "absolute": {"files": {"valid": str(secret)}},
        "nested": {"local_dir": "sub/../../", "files": {"valid": "private.jsonl"}},
    }.items():
        task = _write_task(tmp_path / f"{name}.yaml", **dataset)
        result = _run(*_dry(str(task), "--data-dir", str(data_dir)))
        out = _flat(result.output)
        assert result.exit_code == 2, (name, out)
        assert "leads out of the data folder" in out and str(task) in out and "--data-file" in out, out
    # inside the folder is fine, and so is a file elsewhere given on the command line
    (data_dir / "sub").mkdir()
    _write_docs(data_dir / "sub" / "valid.jsonl")
    task = _write_task(tmp_path / "inside.yaml", local_dir="sub", files={"valid": "valid.jsonl"})
    assert _run(*_dry(str(task), "--data-dir", str(data_dir))).exit_code == 0
    task = _write_task(tmp_path / "given.yaml", files={"valid": "valid.jsonl"})
    result = _run(*_dry(str(task), "--data-file", f"mytask={secret}"))
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- 3. credentials in --base-url


def test_base_url_query_is_kept_off_the_route(
    hyouka_home: Path, jglue_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), stats=stats) as url:
        result = _run("run", "--model", "openai:echo", "--base-url", f"{url}?api_key=sekrit-123", "--tasks",
                      "jcommonsenseqa", "--mode", "generate", "--limit", "2", "--data-dir", str(jglue_dir),
                      "--no-cache")
    assert result.exit_code == 0, result.output
    assert stats.by_path["completions"] == 2 and stats.by_status[200] == 2
    assert "sekrit-123" not in result.output + caplog.text
    assert "query parameters (api_key) are sent with every request" in caplog.text  # says what it did


def test_base_url_with_user_and_password_is_refused(hyouka_home: Path, jglue_dir: Path) -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), stats=stats) as url:
        with_user = url.replace("http://", "http://alice:pa55word@")
        result = _run("run", "--model", "openai:echo", "--base-url", with_user, "--tasks", "jcommonsenseqa",
                      "--limit", "2", "--data-dir", str(jglue_dir), "--no-cache")
    out = _flat(result.output)
    assert result.exit_code == 2 and "--base-url" in out and "user:pass@" in out and "Basic auth" in out, out
    assert "pa55word" not in out
    assert stats.requests == 0


# --------------------------------------------------------------------------- 5. failed calls are counted


def test_a_run_where_no_call_succeeded_exits_non_zero(hyouka_home: Path, jglue_dir: Path) -> None:
    with serve_openai(EchoModel(), fail=lambda info: Fault(status=400, message="bad request")) as url:
        result = _run("run", "--model", "openai:echo", "--base-url", url, "--tasks", "jcommonsenseqa",
                      "--mode", "generate", "--limit", "3", "--data-dir", str(jglue_dir), "--no-cache")
    out = _flat(result.output)
    assert result.exit_code == 1, out
    assert "no call succeeded: all 3 samples failed (api_error: 3)" in out and "HTTP 400" in out, out


def test_a_run_with_some_failed_samples_says_how_many_last(hyouka_home: Path, jglue_dir: Path) -> None:
    question = json.loads((jglue_dir / "jcommonsenseqa-v1.3" / "valid-v1.3.json").read_text().splitlines()[1])
    with serve_openai(EchoModel(), fail=fail_matching(question["question"], status=400)) as url:
        result = _run("run", "--model", "openai:echo", "--base-url", url, "--tasks", "jcommonsenseqa",
                      "--mode", "generate", "--limit", "3", "--data-dir", str(jglue_dir), "--no-cache")
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert "1 of 3 samples failed" in last and "api_error: 1" in last, result.output


# --------------------------------------------------------------------------- 9. encodings


def test_a_shift_jis_task_file_is_named_and_readable_with_its_encoding(tmp_path: Path, hyouka_home: Path) -> None:
    data = _write_docs(tmp_path / "sjis.jsonl", encoding="cp932")
    task = _write_task(tmp_path / "sjis.yaml", files={"valid": "sjis.jsonl"})
    result = _run(*_dry(str(task), "--data-file", f"mytask={data}"))
    out = _flat(result.output)
    assert result.exit_code == 2, out
    assert f"{data}:1:" in out and "not valid utf-8" in out and "encoding" in out, out
    task = _write_task(tmp_path / "sjis2.yaml", files={"valid": "sjis.jsonl"}, encoding="cp932")
    result = _run(*_dry(str(task), "--data-file", f"mytask={data}", "--output", str(tmp_path / "plan.json")))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "plan.json").read_text())["tasks"][0]["n_docs"] == 3


def test_a_shift_jis_task_file_itself_is_named(tmp_path: Path, hyouka_home: Path) -> None:
    task = _write_task(tmp_path / "sjis-task.yaml", files={"valid": "x.jsonl"})
    task.write_bytes(task.read_text(encoding="utf-8").replace("答えよ", "日本語で答えよ").encode("cp932"))
    result = _run(*_dry(str(task)))
    out = _flat(result.output)
    assert result.exit_code == 2 and f"task file {task} is not UTF-8" in out, out


def test_eval_data_in_shift_jis_needs_encoding(tmp_path: Path, hyouka_home: Path) -> None:
    data = tmp_path / "answers.csv"
    data.write_bytes("question,prediction,target\n首都は？,東京,東京\n山は？,富士山,阿蘇山\n".encode("cp932"))
    args = ["eval", str(data), "--predictions-column", "prediction", "--targets-column", "target",
            "--metrics", "exact_match", "--format", "json"]
    result = _run(*args)
    out = _flat(result.output)
    assert result.exit_code == 2 and str(data) in out and "--encoding" in out, out
    result = _run(*args, "--encoding", "cp932")
    assert result.exit_code == 0, result.output
    (evaluated,) = json.loads(result.stdout)
    assert evaluated["aggregates"]["exact_match"]["value"] == 0.5, evaluated["aggregates"]


# --------------------------------------------------------------------------- 10. labels outside the label set


@pytest.mark.parametrize("label", [7, -1, "two", 5])
def test_a_choice_label_outside_the_choices_is_refused_before_any_call(
    tmp_path: Path, hyouka_home: Path, label: object
) -> None:
    data = tmp_path / "jcqa.jsonl"
    data.write_text(_jcqa_line(1, 0) + "\n\n" + _jcqa_line(2, label) + "\n" + _jcqa_line(3, 4) + "\n", encoding="utf-8")
    stats = ServerStats()
    with serve_openai(EchoModel(), stats=stats) as url:
        result = _run("run", "--model", "openai:echo", "--base-url", url, "--tasks", "jcommonsenseqa",
                      "--data-file", f"jcommonsenseqa={data}", "--no-cache")
    out = _flat(result.output)
    assert result.exit_code == 2, out
    assert f"{data}:3:" in out and f"label {str(label)!r}" in out and "0 to 4" in out, out
    assert stats.requests == 0


@pytest.mark.parametrize(("label", "why"), [("NaN", "not a finite number"), ("two", "not a number"),
                                            (7, "outside the task's range 0 to 5")])
def test_a_jsts_label_that_is_no_score_is_refused(tmp_path: Path, hyouka_home: Path, label: object, why: str) -> None:
    data = tmp_path / "jsts.jsonl"
    rows = [{"sentence_pair_id": str(i), "sentence1": "犬が走る", "sentence2": "犬が走っている", "label": 3.2}
            for i in range(3)]
    rows[2]["label"] = label
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    result = _run(*_dry("jsts", "--data-file", f"jsts={data}"))
    out = _flat(result.output)
    assert result.exit_code == 2 and f"{data}:3:" in out and why in out, out


def test_a_suite_task_with_a_bad_label_fails_instead_of_being_skipped(tmp_path: Path, hyouka_home: Path) -> None:
    folder = tmp_path / "datasets" / "jnli-v1.3"
    folder.mkdir(parents=True)
    rows = [{"sentence_pair_id": str(i), "sentence1": "a", "sentence2": "b", "label": "entailment"} for i in range(3)]
    rows[1]["label"] = "entails"
    data = folder / "valid-v1.3.json"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = _run(*_dry("jglue", "--data-dir", str(tmp_path / "datasets")))
    out = _flat(result.output)
    assert result.exit_code == 2 and f"{data}:2:" in out and "label 'entails' is not one of" in out, out


# --------------------------------------------------------------------------- 11. refused options


def test_negative_fewshot_is_refused(hyouka_home: Path, jglue_dir: Path) -> None:
    result = _run(*_dry("jnli", "--data-dir", str(jglue_dir), "--limit", "2", "--num-fewshot", "-1"))
    out = _flat(result.output)
    words = " ".join(out.replace("│", " ").split())  # typer draws its message in a wrapped box
    assert result.exit_code == 2 and "--num-fewshot" in words and "greater than or equal to 0" in words, out
    import hyouka

    with pytest.raises(ValueError, match="0 or more"):  # the Python API refuses it too, before any data is read
        hyouka.run("openai:x", "jnli", num_fewshot=-1, data_dir=jglue_dir, base_url="http://127.0.0.1:9")


def test_unknown_leaderboard_suite_is_refused(hyouka_home: Path) -> None:
    result = _run("leaderboard", "--suite", "nosuch")
    out = _flat(result.output)
    assert result.exit_code == 2 and "--suite" in out and "unknown suite 'nosuch'" in out and "jglue" in out, out


def test_data_file_keys_must_name_a_task_of_the_run(tmp_path: Path, hyouka_home: Path, jglue_dir: Path) -> None:
    result = _run(*_dry("jcommonsenseqa", "--data-dir", str(jglue_dir), "--limit", "2",
                        "--data-file", "jcommonsenseq=whatever.jsonl"))
    out = _flat(result.output)
    assert result.exit_code == 2 and "--data-file jcommonsenseq=… names no task" in out and "jcommonsenseqa" in out, out

    data = _write_docs(tmp_path / "docs.jsonl")
    task = _write_task(tmp_path / "custom.yaml", files={"valid": "docs.jsonl"})
    result = _run(*_dry(str(task), "--data-file", f"othertask={data}"))
    out = _flat(result.output)
    assert result.exit_code == 2 and "--data-file othertask=" in out and "task mytask" in out, out
    for key in ("mytask", str(task)):  # the task's own name, or its path as given to --tasks
        assert _run(*_dry(str(task), "--data-file", f"{key}={data}")).exit_code == 0


def test_recorded_answers_with_a_duplicate_question_are_refused(
    tmp_path: Path, hyouka_home: Path, mt_bench_dir: Path
) -> None:
    source = mt_bench_dir / "model_answer" / "gpt-4.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    copy = tmp_path / "gpt-4.jsonl"
    copy.write_text("\n".join([*lines[:5], lines[2], *lines[5:]]) + "\n", encoding="utf-8")
    judge = mt_bench_dir / "model_judgment" / "gpt-4_single.jsonl"
    result = _run("run", "--model", f"recorded:{copy}", "--tasks", "ja_mt_bench", "--judge", f"recorded:{judge}",
                  "--data-dir", str(mt_bench_dir), "--limit", "3", "--no-cache")
    out = _flat(result.output)
    qid = json.loads(lines[2])["question_id"]
    assert result.exit_code == 2, out
    assert f"{copy}:6:" in out and f"question_id {qid} is answered twice (also on line 3)" in out, out


# --------------------------------------------------------------------------- 12. dry runs


def test_dry_run_needs_no_api_key(hyouka_home: Path, jglue_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    args = ["--model", "openai:gpt-4o-mini", "--tasks", "jnli", "--data-dir", str(jglue_dir), "--limit", "3"]
    result = _run("run", "--dry-run", *args)
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini" in result.output and "$0.0000" not in result.output
    result = _run("run", *args)  # a real run still needs the key, and says so before any call
    assert result.exit_code == 2 and "OPENAI_API_KEY" in _flat(result.output)


def test_dry_run_that_finds_no_data_fails(hyouka_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYOUKA_JGLUE_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # no hub either (offline, it only waits)
    result = _run("run", "--dry-run", "--model", "openai:m", "--base-url", NO_SERVER, "--tasks", "jglue")
    out = _flat(result.output)
    assert result.exit_code == 2 and "found no data for any task" in out and "jcommonsenseqa" in out, out
    assert "$0.0000" not in out


# --------------------------------------------------------------------------- 13. CSV rows


def test_eval_rows_csv_quotes_every_line_break(tmp_path: Path, hyouka_home: Path) -> None:
    texts = ["改行\rだけ", "二行\nの答え", "CRLF\r\nの答え", "行区切り\u2028文字", "普通"]
    data = tmp_path / "answers.jsonl"
    data.write_text("\n".join(json.dumps({"id": str(i), "question": f"q{i}", "prediction": t, "target": t},
                                         ensure_ascii=False) for i, t in enumerate(texts)) + "\n", encoding="utf-8")
    out = tmp_path / "rows.csv"
    result = _run("eval", str(data), "--predictions-column", "prediction", "--targets-column", "target",
                  "--metrics", "exact_match", "--rows", str(out))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["outputs"] for r in rows] == texts and [r["ground_truth"] for r in rows] == texts
    assert [r["id"] for r in rows] == [str(i) for i in range(len(texts))]
    # every field holding a line break is quoted, so the bare CR cannot end a row for any reader
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert frame["outputs"].tolist() == texts
