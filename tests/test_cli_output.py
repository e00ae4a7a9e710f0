"""What the command line prints: one JSON document or JSON lines, whole ids in a pipe, help on every
option, errors in the CLI's own words, and read-only commands that import no heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.store.store import Store
from tests.fakes import ScriptedModel

runner = CliRunner()
LONG_NAME = "研究所/とても長いモデルの名前-" + "x" * 90


@pytest.fixture()
def two_run_store(tmp_path: Path, jglue_dir: Path) -> str:
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    store = Store(url)
    model = ScriptedModel(answer=lambda _: "中立")
    model.name = LONG_NAME
    hyouka.run(model, "jnli", mode="generate", limit=6, data_dir=jglue_dir, store=store, cache=False)
    hyouka.run(model, "jcommonsenseqa", limit=4, data_dir=jglue_dir, store=store, cache=False)
    return url


def _cli(args: list[str], store: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The console command in a fresh interpreter, stdout a pipe (as in `hyouka runs | cat`)."""
    code = "import sys; from hyouka.cli import app; sys.argv = ['hyouka', *sys.argv[1:]]; app()"
    full_env = {**os.environ, "HYOUKA_STORE_URL": store, **env}
    full_env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                          timeout=120)


def test_json_is_one_document_and_jsonl_one_value_per_line(two_run_store: str) -> None:
    run_id = Store(two_run_store).list_runs()[0]["id"]
    for args, n_lines in ((["runs"], 2), (["leaderboard"], 2), (["show", run_id], 6), (["score", run_id], None),
                          (["tasks"], None)):
        document = runner.invoke(app, [*args, "--format", "json"] + (["--store", two_run_store]
                                                                     if args[0] != "tasks" else []))
        assert document.exit_code == 0, (args, document.output)
        parsed = json.loads(document.stdout)  # the whole output is one JSON value
        assert isinstance(parsed, (list, dict))
        lines = runner.invoke(app, [*args, "--format", "jsonl"] + (["--store", two_run_store]
                                                                   if args[0] != "tasks" else []))
        assert lines.exit_code == 0, (args, lines.output)
        values = [json.loads(line) for line in lines.stdout.splitlines()]
        assert all(isinstance(v, dict) for v in values)
        if n_lines is not None:
            assert len(values) == n_lines, args
    runs = json.loads(runner.invoke(app, ["runs", "--store", two_run_store, "--format", "json"]).stdout)
    assert [r["model"] for r in runs] == [f"ScriptedModel:{LONG_NAME}"] * 2


@pytest.mark.parametrize("command", ["runs", "show", "leaderboard", "score", "tasks", "compare", "eval",
                                     "agreement"])
def test_an_unknown_format_is_refused_naming_the_allowed_ones(command: str, two_run_store: str,
                                                               tmp_path: Path) -> None:
    positional = {"show": ["x"], "score": ["x"], "compare": ["x", "y"], "eval": [str(tmp_path / "d.csv")],
                  "agreement": ["x", "y"]}.get(command, [])
    result = runner.invoke(app, [command, *positional, "--format", "xml"])
    assert result.exit_code == 2, result.output
    assert "'xml'" in result.output
    for allowed in ("table", "json", "jsonl"):
        assert f"'{allowed}'" in result.output


def _all_commands(group: object, prefix: str = "") -> list[tuple[str, object]]:
    commands = getattr(group, "commands", None)
    if commands is None:
        return [(prefix, group)]
    out = []
    for name, command in commands.items():
        out += _all_commands(command, f"{prefix} {name}".strip())
    return out


def test_every_option_and_argument_says_what_it_does() -> None:
    missing = []
    for name, command in _all_commands(typer.main.get_command(app)):
        for param in command.params:
            if param.name == "help":
                continue
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"hyouka {name} {param.opts[0]}")
    assert not missing, "options without help: " + ", ".join(missing)
    help_text = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "few-shot" in help_text or "solved examples" in help_text


def test_piped_output_keeps_run_ids_and_names_whole(two_run_store: str) -> None:
    proc = _cli(["runs"], two_run_store)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3  # a header and one line per run: nothing wrapped
    for run in Store(two_run_store).list_runs():
        line = next(line for line in lines if line.startswith(run["id"] + " "))
        assert f"ScriptedModel:{LONG_NAME}" in line and run["task"] in line
    # what `runs` prints is what `show` takes
    first_id = lines[1].split()[0]
    assert _cli(["show", first_id], two_run_store).returncode == 0
    board = _cli(["leaderboard"], two_run_store)
    assert f"ScriptedModel:{LONG_NAME}" in board.stdout


# what no read-only command needs: a model, a dataframe, SQLAlchemy, Typer and pydantic (Typer's option
# parsing imports it), Jinja and PyYAML (reading task files), Rich (help and progress bars)
HEAVY = ("torch", "transformers", "pandas", "scipy", "numpy", "sqlalchemy", "matplotlib", "typer", "pydantic", "jinja2",
         "yaml", "rich", "openai", "httpx", "fugashi", "fastapi")
_IMPORTS = (
    "import contextlib, io, json, sys\n"
    "from hyouka.cli import app\n"
    "sys.argv = ['hyouka', *sys.argv[1:]]\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        app()\n"
    "    except SystemExit as exc:\n"
    "        code = exc.code\n"
    "print(json.dumps([code, sorted(sys.modules)]))\n"
)


def _imported(args: list[str], env: dict[str, str]) -> tuple[int, set[str]]:
    """Exit code and the modules a fresh ``hyouka ARGS`` imported."""
    proc = subprocess.run([sys.executable, "-c", _IMPORTS, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    code, modules = json.loads(proc.stdout)
    return code, set(modules)


def test_read_only_commands_import_no_heavy_library(two_run_store: str, tmp_path: Path) -> None:
    from hyouka.cli import COMMANDS

    run_id = Store(two_run_store).list_runs()[0]["id"]
    env = {**os.environ, "HYOUKA_STORE_URL": two_run_store, "HYOUKA_HOME": str(tmp_path / "home")}
    assert _imported(["tasks"], env)[0] == 0  # the first call indexes the built-in tasks (hyouka.tasks.catalog)
    for args in (["runs"], ["runs", "--format", "json"], ["leaderboard"], ["leaderboard", "--format", "jsonl"],
                 ["show", run_id], ["show", run_id, "--format", "json"], ["tasks"], ["tasks", "--format", "json"]):
        code, modules = _imported(args, env)
        assert code == 0, args
        assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))
        # a command imports its own module only (hyouka.cli.COMMANDS): none of the others
        others = {module for name, module in COMMANDS.items() if module != COMMANDS[args[0]]}
        assert not modules & others, (args, sorted(modules & others))
    code, modules = _imported(["--help"], env)  # every command's help, by Typer and Rich: nothing else heavy
    assert code == 0 and set(COMMANDS.values()) <= modules
    assert not modules & (set(HEAVY) - {"typer", "rich"}), sorted(modules & set(HEAVY))
    assert "typer._adapters" not in modules  # Typer's pydantic side


def test_errors_name_the_command_line_flags(tmp_path: Path, hyouka_home: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "日本の首都は？", "answer": "東京", "gold": "東京"}\n', encoding="utf-8")
    no_targets = runner.invoke(app, ["eval", str(data), "--predictions-column", "answer", "--metrics",
                                     "exact_match"])
    assert no_targets.exit_code == 2
    assert "--targets-column" in no_targets.output and "targets=" not in no_targets.output
    wrong_column = runner.invoke(app, ["eval", str(data), "--predictions-column", "answer", "--targets-column",
                                       "nosuch", "--metrics", "exact_match"])
    assert wrong_column.exit_code == 2
    assert "--targets-column nosuch" in wrong_column.output and "targets=" not in wrong_column.output
    no_judge = runner.invoke(app, ["eval", str(data), "--predictions-column", "answer", "--targets-column", "gold",
                                   "--metrics", "answer_correctness"])
    assert no_judge.exit_code == 2
    assert "--judge" in no_judge.output and "judge=" not in no_judge.output
    judge_task = runner.invoke(app, ["run", "--model", "recorded:none.jsonl", "--tasks", "ja_mt_bench"])
    assert judge_task.exit_code == 2
    assert "--judge" in judge_task.output and "judge=" not in judge_task.output


def test_the_python_api_still_names_its_keywords(tmp_path: Path, hyouka_home: Path) -> None:
    from hyouka.evaluation import evaluate

    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "日本の首都は？", "answer": "東京"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"targets='<column>'"):
        evaluate(data=data, predictions="answer", metrics="exact_match", cache=False)
    with pytest.raises(ValueError, match=r"targets='nosuch' is not a column"):
        evaluate(data=data, predictions="answer", targets="nosuch", metrics="exact_match", cache=False)


def test_progress_shows_samples_done_of_all_and_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from hyouka.cli import _app

    screen = io.StringIO()
    monkeypatch.setattr(_app.err, "_console", Console(file=screen, force_terminal=True, width=160))
    with _app.progress_bars() as progress:
        update = progress("jcommonsenseqa")
        for done in range(0, 41, 8):
            update(done, 40)
    shown = screen.getvalue()
    assert "jcommonsenseqa" in shown and "40/40" in shown and "samples" in shown
    assert "ETA" in shown
