"""Task and rubric templates are untrusted: they render in Jinja's sandbox, and their errors name where they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.judge.prompts import grading_messages
from hyouka.judge.rubric import load_rubric
from hyouka.tasks.prompts import PromptError, render

runner = CliRunner()


def _flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def payloads(mark: Path) -> dict[str, str]:
    """Template-injection payloads that, outside a sandbox, run ``touch mark``."""
    cmd = f"touch {mark}"
    return {
        "cycler": f"{{{{ cycler.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        "lipsum": f"{{{{ lipsum.__globals__['os'].popen('{cmd}').read() }}}}",
        "joiner": f"{{{{ joiner.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        "namespace": f"{{{{ namespace.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        "self.__init__": (
            f"{{{{ self.__init__.__globals__.__builtins__.__import__('os').popen('{cmd}').read() }}}}"
        ),
        "__class__.__mro__": (
            "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
            f"{{{{ c('{cmd}', shell=True).wait() }}}}{{% endif %}}{{% endfor %}}"
        ),
    }


@pytest.mark.parametrize("name", list(payloads(Path("x"))))
def test_injection_payloads_render_nothing_and_run_nothing(tmp_path: Path, name: str) -> None:
    mark = tmp_path / "pwned"
    try:
        rendered, message = render(payloads(mark)[name], {"question": "q", "_id": "0"}), ""
    except PromptError as exc:
        rendered, message = None, str(exc)
    assert not mark.exists(), f"{name} ran a shell command"
    assert rendered is None and ("refused" in message or "lacks" in message), message


@pytest.mark.parametrize("source", ["{{ 'a' * 10**9 }}", "{{ [0] * 10**8 }}", "{{ 9 ** 99999999 }}"])
def test_templates_cannot_build_huge_values(source: str) -> None:
    with pytest.raises(PromptError, match="refused by the sandbox"):
        render(source, {})
    assert render("{{ '-' * 3 }}{{ 2**10 }}", {}) == "---1024"


def test_plain_field_templates_still_render() -> None:
    doc = {"question": "富士山は？", "choice0": "山", "answers": ["a", "b"]}
    assert render("質問：{{question}}\n選択肢：{{ choice0 }}", doc) == "質問：富士山は？\n選択肢：山"
    assert render("{{answers[0]}}", doc) == "a"  # Jinja syntax, in the sandbox
    assert render("{% for a in answers %}{{ a }}{% endfor %}", doc) == "ab"


def _task_file(tmp_path: Path, doc_to_text: str) -> tuple[Path, Path]:
    data = tmp_path / "data.jsonl"
    data.write_text(
        "\n".join(json.dumps({"id": f"q{i}", "question": f"問{i}", "answer": "はい"}, ensure_ascii=False)
                  for i in range(3)) + "\n",
        encoding="utf-8",
    )
    task = tmp_path / "evil.yaml"
    task.write_text(yaml.safe_dump({
        "task": "evil", "version": "1", "dataset": {"files": {"valid": "data.jsonl"}, "id_field": "id"},
        "output_type": "generate_until", "modes": ["generate"], "instruction": "答えよ",
        "doc_to_text": doc_to_text, "doc_to_target": "{{answer}}", "metric_list": [{"metric": "exact_match"}],
    }, allow_unicode=True), encoding="utf-8")
    return task, data


@pytest.mark.parametrize("name", ["cycler", "self.__init__", "__class__.__mro__"])
def test_a_task_file_payload_runs_nothing_under_dry_run(tmp_path: Path, hyouka_home: Path, name: str) -> None:
    mark = tmp_path / "pwned"
    task, data = _task_file(tmp_path, payloads(mark)[name])
    result = runner.invoke(app, ["run", "--dry-run", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
                                 "--tasks", str(task), "--data-file", f"{task}={data}"])
    assert not mark.exists()
    assert result.exit_code == 2, result.output
    out = _flat(result.output)
    assert str(task) in out and "doc_to_text" in out and "document q0" in out, out


def test_a_template_error_names_file_field_and_document(tmp_path: Path, hyouka_home: Path) -> None:
    task, data = _task_file(tmp_path, "{{ question }}{{ 1 // 0 }}")
    result = runner.invoke(app, ["run", "--dry-run", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
                                 "--tasks", str(task), "--data-file", f"{task}={data}"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # a message, not a traceback
    out = _flat(result.output)
    assert str(task) in out and "doc_to_text" in out and "document q0" in out and "ZeroDivisionError" in out, out


def test_a_rubric_template_renders_in_the_sandbox(tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    base = yaml.safe_load((Path(load_rubric("answer_correctness").source)).read_text(encoding="utf-8"))
    for name, payload in payloads(mark).items():
        path = tmp_path / f"rubric-{name.replace('.', '_')}.yaml"
        path.write_text(yaml.safe_dump({**base, "template": "{{ answer }}" + payload}, allow_unicode=True),
                        encoding="utf-8")
        rubric = load_rubric(path)
        with pytest.raises(PromptError, match="template") as info:
            grading_messages(rubric, {"question": "q", "answer": "a", "ground_truth": "g"})
        assert str(path) in str(info.value)
        assert not mark.exists(), f"{name} ran a shell command from a rubric"
    # a benign custom template still renders, with the frame's values
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({**base, "template": "{{ title }}: {{ answer }} ({{ lo }}-{{ hi }})"},
                                   allow_unicode=True), encoding="utf-8")
    messages = grading_messages(load_rubric(path), {"question": "q", "answer": "答え", "ground_truth": "g"})
    assert messages[1].content == f"{base['title']}: 答え (1-5)"
