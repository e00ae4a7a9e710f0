"""How the command line starts: commands registered in one place and imported on demand, and the
index of the built-in tasks that lets ``hyouka tasks`` and ``leaderboard`` skip pydantic.

(What each read-only command imports is checked in test_cli_output.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from hyouka.cli import COMMANDS, app
from hyouka.cli._lazy import lazy_group
from hyouka.tasks import catalog, registry
from hyouka.tasks.prompts import PROMPT_FAMILIES

runner = CliRunner()


def test_help_lists_every_registered_command_with_its_own_help() -> None:
    group = typer.main.get_command(app)
    assert list(group.commands) == list(COMMANDS)
    shown = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    for name, command in group.commands.items():  # each module imported: its command's help as written there
        first_line = (command.short_help or command.help or "").strip().splitlines()[0]
        assert f"{name} " in shown.output and first_line[:60] in shown.output, name


def test_a_plain_click_command_under_the_root_keeps_its_usage_help_and_exit_codes(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'none.sqlite'}"
    listed = runner.invoke(app, ["show", "--help"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "Usage: root show [OPTIONS] RUN_ID" in listed.output
    assert "run id or unique prefix" in listed.output and "show at most N samples" in listed.output
    missing = runner.invoke(app, ["show", "nosuch", "--store", store])
    assert missing.exit_code == 2 and "no run 'nosuch'" in missing.output
    no_id = runner.invoke(app, ["show"])
    assert no_id.exit_code == 2 and "Missing argument 'RUN_ID'" in no_id.output
    typo = runner.invoke(app, ["runz"])
    assert typo.exit_code == 2 and "'runs'" in typo.output  # the root still suggests the command meant


def test_the_console_script_runs_a_plain_click_command_as_the_typer_root_does(tmp_path: Path) -> None:
    """``hyouka show …`` from a shell skips Typer; under the Typer root it says and exits the same."""
    store = f"sqlite:///{tmp_path / 'none.sqlite'}"
    code = "import sys; from hyouka.cli import app; sys.argv = ['hyouka', *sys.argv[1:]]; app()"
    for args in (["show", "nosuch", "--store", store], ["show", "x", "--limit", "0"], ["tasks", "--format", "xml"]):
        shell = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        typer_root = runner.invoke(app, args, prog_name="hyouka")
        assert shell.returncode == typer_root.exit_code == 2, (args, shell.stderr, typer_root.output)
        assert shell.stdout + shell.stderr == typer_root.output, args


@pytest.mark.parametrize(("words", "expected"), [("hyouka runs --format ", {"table", "json", "jsonl"}),
                                               ("hyouka show x --", {"--store", "--format", "--limit"}),
                                               ("hyouka ru", {"run", "runs"})])
def test_shell_completion_reaches_into_plain_click_commands(words: str, expected: set[str]) -> None:
    code = "import sys; from hyouka.cli import app; sys.argv = ['hyouka']; app()"
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "_HYOUKA_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) >= expected, proc.stdout


def test_commands_registered_on_the_root_app_are_refused() -> None:
    root = typer.Typer(cls=lazy_group({}))

    @root.command()
    def one() -> None:
        """One."""

    @root.command()
    def two() -> None:
        """Two."""

    with pytest.raises(TypeError, match="COMMANDS"):
        typer.main.get_command(root)


@pytest.fixture()
def fresh_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty home for the index; the process's cached readings are dropped before and after."""
    home = tmp_path / "home"
    monkeypatch.setenv("HYOUKA_HOME", str(home))
    catalog.builtin_catalog.cache_clear()
    registry._builtin_task.cache_clear()
    yield home
    catalog.builtin_catalog.cache_clear()
    registry._builtin_task.cache_clear()


def test_the_index_says_what_the_task_files_say(fresh_catalog: Path) -> None:
    built = catalog.builtin_catalog()
    assert len(list((fresh_catalog / "catalog").glob("*.json"))) == 1
    catalog.builtin_catalog.cache_clear()
    read_back = catalog.builtin_catalog()  # from the index this time
    for facts in (built, read_back):
        assert list(facts.tasks) == sorted(p.stem for p in registry.BUILTIN_DIR.glob("*.yaml"))
        for name, task in facts.tasks.items():
            spec = registry.load_task(name)
            assert (task.version, list(task.modes), task.description) == (spec.version, spec.modes, spec.description)
            assert list(task.metrics) == [m.metric for m in spec.metric_list]
        suites = registry.builtin_suites()
        assert list(facts.suites) == list(suites)
        for name, suite in facts.suites.items():
            assert [vars(e) for e in suite.tasks] == [e.model_dump() for e in suites[name].tasks]
        assert facts.families == {f.name: f.description for f in PROMPT_FAMILIES.values()}


def test_an_edited_task_file_is_read_again(fresh_catalog: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = tmp_path / "builtin"
    shutil.copytree(registry.BUILTIN_DIR, tasks)
    monkeypatch.setattr(catalog, "BUILTIN_DIR", tasks)
    monkeypatch.setattr(registry, "BUILTIN_DIR", tasks)
    before = catalog.builtin_catalog().tasks["jnli"]
    jnli = tasks / "jnli.yaml"
    jnli.write_text(jnli.read_text(encoding="utf-8").replace(before.description, "JNLI, as edited"), encoding="utf-8")
    catalog.builtin_catalog.cache_clear()
    registry._builtin_task.cache_clear()
    assert catalog.builtin_catalog().tasks["jnli"].description == "JNLI, as edited"
    assert len(list((fresh_catalog / "catalog").glob("*.json"))) == 2  # one per content: both kept
    listed = runner.invoke(app, ["tasks", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert {t["task"]: t["description"] for t in json.loads(listed.stdout)["tasks"]}["jnli"] == "JNLI, as edited"


def test_a_damaged_index_is_read_again(fresh_catalog: Path) -> None:
    built = catalog.builtin_catalog()
    (index,) = (fresh_catalog / "catalog").glob("*.json")
    index.write_text('{"format": 1, "tasks": [', encoding="utf-8")
    catalog.builtin_catalog.cache_clear()
    assert catalog.builtin_catalog() == built
    assert json.loads(index.read_text(encoding="utf-8"))["format"] == 1


def test_without_a_home_for_the_index_the_files_are_read_each_time(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")
    monkeypatch.setenv("HYOUKA_HOME", str(not_a_folder / "home"))
    catalog.builtin_catalog.cache_clear()
    try:
        listed = runner.invoke(app, ["tasks", "--format", "json"])
    finally:
        catalog.builtin_catalog.cache_clear()
    assert listed.exit_code == 0, listed.output
    assert [t["task"] for t in json.loads(listed.stdout)["tasks"]] == registry.builtin_task_names()
