"""lm-eval task YAML import, prompt layouts as data, few-shot samplers and process_docs (no model)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from hyouka.tasks.lm_eval_yaml import LmEvalImportError, load_lm_eval_yaml
from hyouka.tasks.process_docs import ProcessDocsError
from hyouka.tasks.registry import load_task
from hyouka.tasks.spec import TaskFileError, load_task_file
from hyouka.tasks.task import Task

DOCS = [{"q": f"問{i}", "a": f"答{i}", "choices": [f"答{i}", "違う"], "label": 0} for i in range(12)]


def _write(tmp_path: Path, name: str, config: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _data(tmp_path: Path, rows: list[dict[str, Any]] = DOCS) -> dict[str, str]:
    out = {}
    for split, part in (("train", rows[6:]), ("validation", rows[:6])):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
        out[split] = str(path)
    return out


def _mc(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"task": "toy", "dataset_path": "json", "dataset_kwargs": {"data_files": _data(tmp_path)},
            "training_split": "train", "validation_split": "validation", "output_type": "multiple_choice",
            "doc_to_text": "Q: {{ q }}", "doc_to_choice": "choices", "doc_to_target": "label", **extra}


def test_raw_layout_builds_lm_eval_prompt_with_description_and_delimiters(tmp_path: Path) -> None:
    path = _write(tmp_path, "toy.yaml", _mc(tmp_path, description="説明。\n", target_delimiter=" => ",
                                            fewshot_delimiter=" || ", num_fewshot=2,
                                            fewshot_config={"sampler": "first_n"}))
    task = Task(load_task(str(path)))
    doc = task.docs()[0]
    # description, then (text + target_delimiter + answer + fewshot_delimiter) per shot, then the text
    assert task.prompt(doc) == "説明。\nQ: 問6 => 答6 || Q: 問7 => 答7 || Q: 問0"
    assert [r.continuation for r in task.requests(doc, "loglikelihood")] == [" => 答0", " => 違う"]


def test_lm_eval_defaults_target_delimiter_space_and_blank_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "toy.yaml", _mc(tmp_path, num_fewshot=1, fewshot_config={"sampler": "first_n"}))
    task = Task(load_task(str(path)))
    assert task.prompt(task.docs()[1]) == "Q: 問6 答6\n\nQ: 問1"


def test_lm_eval_seeded_sampler_matches_python_random_draws(tmp_path: Path) -> None:
    """lm-eval's default sampler: one Random(1234) draws k training docs for each document in turn."""
    path = _write(tmp_path, "toy.yaml", _mc(tmp_path, num_fewshot=2))
    task = Task(load_task(str(path)))
    rnd, train = random.Random(1234), DOCS[6:]
    for doc in task.docs():  # built in order...
        expected = rnd.sample(train, 2)
        assert task.fewshot_for(doc) == [dict(d, _id=str(i)) for d in expected for i in [train.index(d)]]
    again = Task(load_task(str(path)))  # ...or out of order: a document's draw depends on its position only
    last = again.docs()[-1]
    assert again.fewshot_for(last) == task.fewshot_for(task.docs()[-1])


def test_task_file_defines_its_layout_as_data(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DOCS), encoding="utf-8")
    spec = {
        "task": "framed", "version": "1", "description": "前置き",
        "dataset": {"files": {"valid": rows.name}, "eval_split": "valid"},
        "output_type": "generate_until", "modes": ["generate"], "instruction": "答えよ",
        "doc_to_text": "{{ q }}", "doc_to_target": "{{ a }}", "num_fewshot": 1,
        "fewshot": {"sampler": "first_n"}, "fewshot_delimiter": "\n--\n",
        "layout": {"header": "[{{ description }}|{{ instruction }}]\n", "shot": "<{{ input }}={{ answer }}>",
                   "query": "<{{ input }}=", "stop": [">"]},
        "metric_list": [{"metric": "exact_match"}],
    }
    task = Task(load_task(str(_write(tmp_path, "framed.yaml", spec))), data_dir=tmp_path)
    assert task.prompt(task.docs()[0]) == "[前置き|答えよ]\n<問1=答1>\n--\n<問0="
    assert task.generation_params().stop == (">",)
    assert task.family_choice is None  # a run records that the task's own layout was used


def test_builtin_prompts_unchanged_by_the_layouts() -> None:
    """plain and alpaca keep their layout (the frames are Jinja now)."""
    spec = load_task("jnli")
    task = Task(spec, family="plain")
    doc = {"_id": "x", "sentence1": "犬が走る", "sentence2": "動物が動く", "label": "entailment"}
    assert task.prompt(doc) == f"{spec.instruction}\n\n前提：犬が走る\n仮説：動物が動く\n答え："


def test_llm_jp_eval_family_uses_their_wording_and_numbered_choices() -> None:
    task = Task(load_task("jcommonsenseqa"), family="llm-jp-eval")
    doc = {"_id": "1", "q_id": 1, "question": "空の色は？", "label": 2,
           **{f"choice{i}": c for i, c in enumerate(["赤", "緑", "青", "黄", "白"])}}
    prompt = task.prompt(doc)
    assert prompt.startswith("以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。")
    assert "回答は選択肢の番号（例：0）でするものとします。 回答となる数値をint型で返し" in prompt
    assert prompt.endswith("### 入力:\n質問：空の色は？\n選択肢：0.赤,1.緑,2.青,3.黄,4.白\n\n### 応答:\n")
    assert task.target_text(doc) == "2" and task.choices(doc) == ["0", "1", "2", "3", "4"]
    jnli = Task(load_task("jnli"), family="llm-jp-eval")
    assert "制約：\n- 前提から仮説が" in jnli.spec.instruction and jnli.choices({}) == [
        "entailment", "contradiction", "neutral"]
    assert "整数値のみ" in Task(load_task("jsts"), family="llm-jp-eval").spec.instruction
    with pytest.raises(ValueError, match="no prompt for task marc_ja"):
        Task(load_task("marc_ja"), family="llm-jp-eval")


def test_llm_jp_eval_sampler_takes_first_of_seed_42_shuffle(tmp_path: Path) -> None:
    rows = tmp_path / "train.jsonl"
    rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DOCS), encoding="utf-8")
    spec = {"task": "t", "version": "1", "dataset": {"files": {"valid": rows.name, "train": rows.name},
                                                       "eval_split": "valid", "fewshot_split": "train"},
            "output_type": "generate_until", "modes": ["generate"], "doc_to_text": "{{ q }}",
            "doc_to_target": "{{ a }}", "num_fewshot": 3, "fewshot": {"sampler": "llm-jp-eval"},
            "metric_list": [{"metric": "exact_match"}]}
    task = Task(load_task(str(_write(tmp_path, "t.yaml", spec))), data_dir=tmp_path)
    shuffled = list(DOCS)
    random.seed(42)
    random.shuffle(shuffled)  # as llm-jp-eval's preprocessing does
    assert [d["q"] for d in task.fewshot_for(task.docs()[0])] == [d["q"] for d in shuffled[:3]]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"output_type": "loglikelihood_rolling"}, "output_type"),
        ({"metric_list": [{"metric": "acc_norm"}]}, "acc_norm"),
        ({"metric_list": [{"metric": "acc", "aggregation": "median"}]}, "aggregation"),
        ({"fewshot_config": {"sampler": "balanced"}}, "fewshot_config.sampler"),
        ({"fewshot_config": {"samples": [{"q": 1}]}}, "samples"),
        ({"use_prompt": "promptsource:x"}, "use_prompt"),
        ({"gen_prefix": "答え："}, "gen_prefix"),
        ({"repeats": 4}, "repeats"),
        ({"doc_to_choice": {"a": "b"}}, "doc_to_choice"),
    ],
)
def test_unmappable_lm_eval_features_are_refused_by_name(tmp_path: Path, extra: dict[str, Any], named: str) -> None:
    path = _write(tmp_path, "bad.yaml", _mc(tmp_path, **extra))
    with pytest.raises(LmEvalImportError, match=named):
        load_task_file(path)


def test_generation_kwargs_and_regex_filter_map(tmp_path: Path) -> None:
    config = {"task": "gen", "dataset_path": "json", "dataset_kwargs": {"data_files": _data(tmp_path)},
              "validation_split": "validation", "output_type": "generate_until", "doc_to_text": "{{ q }}",
              "doc_to_target": "a", "generation_kwargs": {"until": ["\n", "。"], "max_gen_toks": 7},
              "filter_list": [{"name": "get", "filter": [{"function": "regex", "regex_pattern": r"答(\d+)"},
                                                          {"function": "take_first"}]}],
              "metric_list": [{"metric": "llmjp:exact_match"}]}
    task = Task(load_lm_eval_yaml(_write(tmp_path, "gen.yaml", config)))
    params = task.generation_params()
    assert params.stop == ("\n", "。") and params.max_tokens == 7
    assert task._read_answer("それは答3です", task.docs()[0]) == ("3", "3")
    assert task._read_answer("わかりません", task.docs()[0]) == (None, None)
    bad = {**config, "generation_kwargs": {"until": ["\n"], "top_p": 0.9}}
    with pytest.raises(LmEvalImportError, match="top_p"):
        load_lm_eval_yaml(_write(tmp_path, "bad.yaml", bad))
    other = {**config, "filter_list": [{"name": "x", "filter": [{"function": "lowercase"}]}]}
    with pytest.raises(LmEvalImportError, match="lowercase"):
        load_lm_eval_yaml(_write(tmp_path, "bad2.yaml", other))


def test_process_docs_runs_only_from_the_task_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "utils.py").write_text(
        "def process_docs(dataset):\n"
        "    return dataset.map(lambda d: {**d, 'q': d['q'] + '？'})\n", encoding="utf-8")
    text = "task: toy\ndataset_path: json\nprocess_docs: !function utils.process_docs\n"
    config = _mc(folder)  # the data lies beside the task file
    config.pop("task")
    body = text + yaml.safe_dump({k: v for k, v in config.items() if k != "dataset_path"}, allow_unicode=True)
    path = folder / "toy.yaml"
    path.write_text(body, encoding="utf-8")
    task = Task(load_task(str(path)))
    assert [d["q"] for d in task.docs()][:2] == ["問0？", "問1？"]
    assert task.prompt(task.docs()[0]) == "Q: 問0？"
    hash_before = task.spec.content_hash()
    (folder / "utils.py").write_text((folder / "utils.py").read_text() + "# edited\n", encoding="utf-8")
    assert load_task(str(path)).content_hash() != hash_before  # the code is part of the task

    for reference in ("os.system", "../utils.process_docs", "pkg.mod.func"):
        path.write_text(body.replace("utils.process_docs", reference), encoding="utf-8")
        with pytest.raises((ProcessDocsError, TaskFileError)):
            load_task(str(path))


def test_lm_eval_task_resolved_from_the_installed_package() -> None:
    pytest.importorskip("lm_eval")
    spec = load_task("lm-eval:ja_leaderboard_jnli")
    assert spec.task == "ja_leaderboard_jnli" and spec.dataset.hf_path == "Rakuten/JGLUE"
    assert spec.target_delimiter == "\n" and spec.num_fewshot == 3 and spec.fewshot.sampler == "lm-eval"
    assert spec.description.startswith("以下は、タスクを説明する指示と")
    with pytest.raises(LmEvalImportError, match="no task of that name"):
        load_task("lm-eval:no_such_task_anywhere")


def test_lm_eval_data_files_must_lie_in_the_task_folder(tmp_path: Path) -> None:
    """An lm-eval file is shared like data: it may not read files outside its own folder."""
    outside = tmp_path / "private.jsonl"
    outside.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DOCS), encoding="utf-8")
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name in (str(outside), "../private.jsonl"):
        config = {"task": "leak", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": name}},
                  "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{ q }}",
                  "doc_to_target": "{{ a }}", "metric_list": [{"metric": "exact_match"}]}
        path = folder / "leak.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        with pytest.raises(LmEvalImportError, match=r"outside the task file's folder.*--data-file"):
            load_task(str(path))


LLM_JP_EVAL_INTRO = ("以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。"
                     "要求を適切に満たす応答を書きなさい。")


@pytest.mark.parametrize("shots", [0, 3])
def test_llm_jp_eval_prompts_are_their_template_on_jglue(jglue_dir: Path, shots: int) -> None:
    """llm-jp-eval's get_evaluation_prompt (as the Nejumi leaderboard vendors it): intro, ``### 指示:``,
    each shot's ``### 入力:`` / ``### 応答:`` and the query; shots = the first k of its train split, which
    its JGLUE processors make by shuffling JGLUE's train file with random.seed(42); inputs as they write them."""
    def read(task: str, split: str) -> list[dict[str, Any]]:
        path = jglue_dir / f"{task}-v1.3" / f"{split}-v1.3.json"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    inputs = {
        "jcommonsenseqa": lambda d: f"質問：{d['question']}\n選択肢："
        + ",".join(f"{i}.{d[f'choice{i}']}" for i in range(5)),
        "jsts": lambda d: f"文1：{d['sentence1']}\n文2：{d['sentence2']}",
    }
    for name, make_input in inputs.items():
        task = Task(load_task(name), family="llm-jp-eval", data_dir=jglue_dir, num_fewshot=shots)
        train = read(name, "train")
        random.seed(42)
        random.shuffle(train)
        expected_head = f"{LLM_JP_EVAL_INTRO}\n\n### 指示:\n{task.spec.instruction}"
        for d in train[:shots]:
            expected_head += f"\n\n### 入力:\n{make_input(d)}\n\n### 応答:\n{d['label']}"
        for doc, raw in list(zip(task.docs(), read(name, "valid"), strict=False))[:5]:
            assert task.prompt(doc) == f"{expected_head}\n\n### 入力:\n{make_input(raw)}\n\n### 応答:\n"
            assert task.target_text(doc) == str(raw["label"])
