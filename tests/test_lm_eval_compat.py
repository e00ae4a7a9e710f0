"""lm-eval's Japanese leaderboard tasks read from their own YAML: hyouka against lm-eval 0.4.13 itself.

The tasks are lm-eval's ``ja_leaderboard_jcommonsenseqa``, ``_jnli`` and ``_marc_ja`` as shipped in
the installed ``lm_eval`` package, included by a small YAML that points them at local JSON splits
made here from the shared JGLUE data (labels as the hub's ``Rakuten/JGLUE`` has them: integers).
Both tools score the tiny model built by ``tiny_model_dir``; lm-eval runs in a subprocess with its
``hf`` model type and ``--log_samples``. The prompts must be byte-identical, the choice
log-likelihoods within 1e-4 and the predictions the same, 0-shot and 3-shot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import hyouka
from hyouka.store.store import Store

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("lm_eval")  # a test dependency: hyouka never imports it

from hyouka.tasks.lm_eval_yaml import find_lm_eval_task

N_EVAL, N_TRAIN = 40, 60
JNLI_LABELS = ["entailment", "contradiction", "neutral"]  # Rakuten/JGLUE's ClassLabel order
# (task name here, lm-eval task, num_fewshot, fewshot sampler or None for lm-eval's default)
CONFIGS = [
    ("jcqa_0shot", "ja_leaderboard_jcommonsenseqa", 0, None),
    ("jcqa_3shot_first_n", "ja_leaderboard_jcommonsenseqa", 3, "first_n"),
    ("jcqa_3shot_seeded", "ja_leaderboard_jcommonsenseqa", 3, None),
    ("jnli_0shot", "ja_leaderboard_jnli", 0, None),
    ("jnli_3shot_first_n", "ja_leaderboard_jnli", 3, "first_n"),
    ("marc_0shot", "ja_leaderboard_marc_ja", 0, None),
    ("marc_3shot_first_n", "ja_leaderboard_marc_ja", 3, "first_n"),
]
QUIET_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false",
             "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _read(path: Path, n: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n]]


def _splits(jglue_dir: Path, out: Path) -> dict[str, dict[str, str]]:
    """Local train/validation files per lm-eval task."""
    jcqa = {split: _read(jglue_dir / "jcommonsenseqa-v1.3" / f"{split}-v1.3.json", n)
            for split, n in (("train", N_TRAIN), ("valid", N_EVAL))}
    # JNLI's train set is not in the shared data: its few-shot pool is the valid documents after the scored ones
    jnli_rows = [{**r, "label": JNLI_LABELS.index(r["label"])}
                 for r in _read(jglue_dir / "jnli-v1.3" / "valid-v1.3.json", N_EVAL + N_TRAIN)]
    jnli = {"valid": jnli_rows[:N_EVAL], "train": jnli_rows[N_EVAL:]}
    # MARC-ja is no longer distributed: a small positive (0) / negative (1) file of review-like sentences
    sentences = [r["sentence1"] for r in _read(jglue_dir / "jsts-v1.3" / "train-v1.3.json", N_TRAIN + N_EVAL)]
    marc = [{"sentence": f"{s}とても{'良かった' if i % 3 else '残念でした'}。", "label": 0 if i % 3 else 1}
            for i, s in enumerate(sentences)]
    files = {}
    for name, train, valid in (("jcommonsenseqa", jcqa["train"], jcqa["valid"]),
                               ("jnli", jnli["train"], jnli["valid"]),
                               ("marc_ja", marc[:N_TRAIN], marc[N_TRAIN:])):
        files[f"ja_leaderboard_{name}"] = {
            "train": _jsonl(out / f"{name}-train.jsonl", train),
            "validation": _jsonl(out / f"{name}-validation.jsonl", valid),
        }
    return files


@pytest.fixture(scope="module")
def task_files(tmp_path_factory: pytest.TempPathFactory, jglue_dir: Path) -> list[Path]:
    out = tmp_path_factory.mktemp("lm-eval-tasks")
    data = _splits(jglue_dir, out)
    paths = []
    for name, lm_eval_task, shots, sampler in CONFIGS:
        config: dict[str, Any] = {
            "include": str(find_lm_eval_task(lm_eval_task)),
            "task": name,
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": data[lm_eval_task]},
            "num_fewshot": shots,
        }
        if sampler:
            config["fewshot_config"] = {"sampler": sampler}
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def lm_eval_samples(task_files: list[Path], tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("lm-eval-out") / "samples.json"
    env = {**os.environ, **QUIET_ENV, "HF_HOME": str(out.parent / "hf")}
    script = Path(__file__).with_name("lm_eval_reference.py")
    proc = subprocess.run([sys.executable, str(script), str(tiny_model_dir), str(out), *map(str, task_files)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hyouka_samples(task_files: list[Path], tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('hyouka-store') / 'runs.sqlite'}"
    result = hyouka.run(f"hf:{tiny_model_dir}", [str(p) for p in task_files], store=url, cache=False,
                        dtype="float32", device="cpu")
    store = Store(url)
    return {run.task: store.samples(run.run_id) for run in result.runs}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "lm_eval_task", "shots", "sampler"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_prompts_loglikelihoods_and_predictions_match_lm_eval(
    name: str, lm_eval_task: str, shots: int, sampler: str | None, lm_eval_samples, hyouka_samples
) -> None:
    theirs, ours = lm_eval_samples[name], hyouka_samples[name]
    assert len(theirs) == len(ours) == N_EVAL
    for ref, sample in zip(theirs, ours, strict=True):
        assert ref["doc_id"] == sample["sample_index"]
        pairs = [[sample["prompt"], r["continuation"]] for r in sample["requests"]]
        assert pairs == ref["arguments"]  # the same bytes: context and each continuation
    if shots:
        assert all(sample["prompt"].count("### 応答：") == shots + 1 for sample in ours)
    worst = max(abs(a - b) for ref, s in zip(theirs, ours, strict=True)
                for a, b in zip(ref["logprobs"], s["details"]["logprobs"], strict=True))
    assert worst < 1e-4
    differing = sum(s["prediction"] != max(range(len(r["logprobs"])), key=r["logprobs"].__getitem__)
                    for r, s in zip(theirs, ours, strict=True))
    assert differing == 0
    assert [float(s["prediction"] == s["reference"]) for s in ours] == [r["acc"] for r in theirs]


@pytest.mark.slow
def test_seeded_sampler_draws_differ_per_document(hyouka_samples) -> None:
    """lm-eval's default sampler gives each document its own draw; first_n gives all the same examples."""
    def shots(sample: dict[str, Any]) -> str:
        return sample["prompt"].rsplit("### 指示：", 1)[0]

    assert len({shots(s) for s in hyouka_samples["jcqa_3shot_first_n"]}) == 1
    assert len({shots(s) for s in hyouka_samples["jcqa_3shot_seeded"]}) > N_EVAL // 2


@pytest.mark.slow
def test_cli_runs_lm_eval_task_by_name_on_a_local_file(
    task_files: list[Path], tiny_model_dir: Path, lm_eval_samples, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hyouka.cli import app

    valid = task_files[0].parent / "jcommonsenseqa-validation.jsonl"
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    args = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "lm-eval:ja_leaderboard_jcommonsenseqa",
            "--data-file", f"ja_leaderboard_jcommonsenseqa={valid}", "--num-fewshot", "0", "--limit", "5",
            "--store", url, "--dtype", "float32", "--output", str(tmp_path / "out.json")]
    result = CliRunner().invoke(app, args, env={"HYOUKA_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    (run,) = json.loads((tmp_path / "out.json").read_text())["runs"]
    assert run["task"] == "ja_leaderboard_jcommonsenseqa"
    samples = Store(url).samples(run["run_id"])
    theirs = lm_eval_samples["jcqa_0shot"][:5]
    assert [[[s["prompt"], r["continuation"]] for r in s["requests"]] for s in samples] == [
        t["arguments"] for t in theirs]
