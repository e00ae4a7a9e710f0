"""Read lm-evaluation-harness task YAML as a hyouka :class:`TaskSpec`.

``--tasks path/to/task.yaml`` in lm-eval's schema, or ``--tasks lm-eval:NAME`` for a task
shipped in an installed ``lm_eval`` package (found on disk, never imported). The prompt is laid
out as lm-eval lays it out (the ``raw`` layout: ``description``, then per shot ``doc_to_text +
target_delimiter + answer + fewshot_delimiter``, then ``doc_to_text``), with lm-eval's
defaults (``target_delimiter: " "``, ``fewshot_delimiter: "\\n\\n"``, its seeded sampler with
seed 1234).

Keys hyouka can map are mapped; any other key, value or option that would change the result is
refused by name (:class:`LmEvalImportError`), never dropped. ``!function`` is accepted for
``process_docs`` only, from the folder of the YAML file that names it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hyouka.tasks.catalog import LM_EVAL_PREFIX as PREFIX
from hyouka.tasks.spec import TaskFileError, TaskSpec

LM_EVAL_FEWSHOT_SEED = 1234

# keys that say nothing about the result
_IGNORED = {"tag", "group", "metadata", "dataset_name", "should_decontaminate", "doc_to_decontamination_query"}
_HANDLED = {
    "task", "include", "dataset_path", "dataset_name", "dataset_kwargs", "training_split", "validation_split",
    "test_split", "fewshot_split", "description", "doc_to_text", "doc_to_target", "doc_to_choice",
    "target_delimiter", "fewshot_delimiter", "fewshot_config", "num_fewshot", "output_type",
    "generation_kwargs", "filter_list", "metric_list", "process_docs", "repeats",
}
_LM_EVAL_KEYS = {"dataset_path", "doc_to_text", "output_type", "include", "test_split", "validation_split"}
_HYOUKA_KEYS = {"dataset", "modes", "instruction", "generation"}
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LmEvalImportError(TaskFileError):
    """An lm-eval task uses something hyouka cannot reproduce; the message names it."""


class FunctionRef:
    """An lm-eval ``!function module.name`` tag, with the folder of the file it was written in."""

    def __init__(self, reference: str, folder: Path, path: Path) -> None:
        self.reference, self.folder, self.path = reference, folder, path

    def __repr__(self) -> str:
        return f"!function {self.reference}"


def is_lm_eval_schema(data: dict[str, Any]) -> bool:
    """Whether a parsed task file is written in lm-eval's vocabulary rather than hyouka's."""
    return bool(_LM_EVAL_KEYS & data.keys()) and not (_HYOUKA_KEYS & data.keys())


def _loader(path: Path) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def function(loader: yaml.SafeLoader, node: yaml.Node) -> FunctionRef:
        return FunctionRef(str(loader.construct_scalar(node)), path.parent, path)  # type: ignore[arg-type]

    Loader.add_constructor("!function", function)
    return Loader


def read_config(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The task's keys after resolving ``include`` (relative to the including file), nearest file winning."""
    path = path.resolve()
    if path in _seen:
        raise LmEvalImportError(f"{path}: include cycle ({' -> '.join(map(str, (*_seen, path)))})")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader(path))
    except OSError as exc:
        raise LmEvalImportError(f"cannot read lm-eval task file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise LmEvalImportError(f"lm-eval task file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise LmEvalImportError(f"lm-eval task file {path} must hold a mapping")
    include = data.pop("include", None)
    if include is None:
        return data
    merged: dict[str, Any] = {}
    for item in include if isinstance(include, list) else [include]:
        parent = Path(item) if Path(item).is_absolute() else path.parent / item
        merged.update(read_config(parent, (*_seen, path)))
    return {**merged, **data}


def find_lm_eval_task(name: str) -> Path:
    """The YAML file of task ``name`` in the installed ``lm_eval`` package (not imported)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise LmEvalImportError(f"{PREFIX}{name}: lm_eval is not installed (pip install lm-eval)")
    tasks_dir = Path(next(iter(spec.submodule_search_locations))) / "tasks"
    line = re.compile(rf"^task:\s*['\"]?{re.escape(name)}['\"]?\s*$", re.MULTILINE)
    named = sorted(tasks_dir.rglob(f"*{name}*.yaml"))  # most task files are named after their task
    seen = set(named)
    for path in [*named, *(p for p in sorted(tasks_dir.rglob("*.yaml")) if p not in seen)]:
        try:
            if line.search(path.read_text(encoding="utf-8")):
                return path
        except (OSError, UnicodeDecodeError):
            continue
    raise LmEvalImportError(f"{PREFIX}{name}: no task of that name in {tasks_dir}")


def _refuse(path: Path, key: str, why: str) -> LmEvalImportError:
    return LmEvalImportError(f"{path}: lm-eval key {key!r} cannot be reproduced by hyouka: {why}")


def _template(path: Path, key: str, value: Any) -> str:
    """An lm-eval ``doc_to_*`` value as a hyouka template: a bare field name becomes ``{{ field }}``."""
    if isinstance(value, FunctionRef):
        raise _refuse(path, key, f"{value!r} is Python; only process_docs may be a !function")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _refuse(path, key, f"expected a template or a field name, got {type(value).__name__}")
    return "{{ " + value + " }}" if _FIELD_NAME.match(value) else value


def _choices(path: Path, value: Any) -> list[str] | str | None:
    if value is None:
        return None
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str) or "{{" in item or "{%" in item:
                raise _refuse(path, "doc_to_choice", "list items must be literal strings")
        return list(value)
    if isinstance(value, dict):
        raise _refuse(path, "doc_to_choice", "a mapping of choices")
    if isinstance(value, FunctionRef):
        raise _refuse(path, "doc_to_choice", f"{value!r} is Python; only process_docs may be a !function")
    return str(value)  # a field holding the list, or a template rendering one


def _inside_task_folder(path: Path, file: Path) -> Path:
    """A data file named by the task file: relative to its folder, and refused outside it.

    Task files are shared like data; one naming ``/etc/passwd`` or ``../../secrets.jsonl`` would read
    that file and send it to the model. Data elsewhere is given on the command line (``--data-file``).
    """
    folder = path.parent.resolve()
    resolved = (folder / file).resolve()
    if not resolved.is_relative_to(folder):
        raise _refuse(path, "dataset_kwargs.data_files", f"{file} lies outside the task file's folder {folder}; "
                      "give a file elsewhere on the command line: --data-file TASK=PATH")
    return resolved


def _dataset(path: Path, cfg: dict[str, Any], eval_split: str, fewshot_split: str | None) -> dict[str, Any]:
    dataset_path = cfg.get("dataset_path")
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    if dataset_path == "json":
        files = kwargs.pop("data_files", None)
        if not isinstance(files, dict):
            raise _refuse(path, "dataset_kwargs.data_files", "json datasets need a mapping of split -> file")
        if kwargs:
            raise _refuse(path, "dataset_kwargs", f"options {sorted(kwargs)} besides data_files")
        resolved = {}
        for split, file in files.items():
            if isinstance(file, list):
                if len(file) != 1:
                    raise _refuse(path, "dataset_kwargs.data_files", f"split {split} has {len(file)} files")
                file = file[0]
            resolved[split] = str(_inside_task_folder(path, Path(str(file)).expanduser()))
        for split in filter(None, (eval_split, fewshot_split)):
            if split not in resolved:
                raise _refuse(path, "dataset_kwargs.data_files", f"no file for split {split!r}")
        return {"format": "jsonl", "files": resolved, "eval_split": eval_split, "fewshot_split": fewshot_split}
    if not isinstance(dataset_path, str):
        raise _refuse(path, "dataset_path", "missing; give a Hugging Face dataset or json with data_files")
    if kwargs:
        raise _refuse(path, "dataset_kwargs", f"options {sorted(kwargs)} for a hub dataset")
    return {
        "format": "jsonl",
        "eval_split": eval_split,
        "fewshot_split": fewshot_split,
        "hf_path": dataset_path,
        "hf_name": cfg.get("dataset_name"),
        "source_hint": f"lm-eval task data: {dataset_path}; pass a local JSON-lines file with --data-file",
    }


def _generation(path: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"answer_format": "text"}
    kwargs = dict(cfg.get("generation_kwargs") or {})
    until = kwargs.pop("until", None)
    if until is not None:
        out["until"] = [until] if isinstance(until, str) else list(until)
    out["max_tokens"] = 256  # lm-eval's default max_gen_toks
    for alias in ("max_completion_tokens", "max_tokens", "max_new_tokens", "max_gen_toks"):  # lm-eval's priority
        if alias in kwargs:
            out["max_tokens"] = int(kwargs.pop(alias))
    if kwargs.pop("do_sample", False):
        raise _refuse(path, "generation_kwargs.do_sample", "hyouka benchmark tasks decode greedily")
    if float(kwargs.pop("temperature", 0.0) or 0.0) != 0.0:
        raise _refuse(path, "generation_kwargs.temperature", "hyouka benchmark tasks decode greedily")
    if kwargs:
        raise _refuse(path, "generation_kwargs", f"options {sorted(kwargs)}")
    filters = cfg.get("filter_list")
    if filters:
        if len(filters) != 1:
            raise _refuse(path, "filter_list", f"{len(filters)} filter pipelines (hyouka scores one answer)")
        steps = list(filters[0].get("filter") or [])
        names = [step.get("function") for step in steps]
        if names not in (["regex", "take_first"], ["regex"]):
            raise _refuse(path, "filter_list", f"filter functions {names} (only regex, take_first)")
        regex = steps[0]
        unknown = set(regex) - {"function", "regex_pattern", "group_select", "fallback"}
        if unknown:
            raise _refuse(path, "filter_list", f"regex options {sorted(unknown)}")
        out["answer_regex"] = regex.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")
        out["regex_select"] = int(regex.get("group_select", 0))
        fallback = regex.get("fallback", "[invalid]")
        out["regex_fallback"] = None if fallback == "[invalid]" else fallback  # no match: a format error
    return out


def _metrics(path: Path, cfg: dict[str, Any], output_type: str) -> list[dict[str, Any]]:
    entries = cfg.get("metric_list") or ([{"metric": "acc"}] if output_type == "multiple_choice" else None)
    if not entries:
        raise _refuse(path, "metric_list", "missing (hyouka needs the metrics named)")
    out = []
    for entry in entries:
        name = entry.get("metric")
        if isinstance(name, FunctionRef):
            raise _refuse(path, "metric_list", f"{name!r} is Python")
        options = set(entry) - {"metric", "aggregation", "higher_is_better"}
        if options:
            raise _refuse(path, "metric_list", f"options {sorted(options)} of metric {name!r}")
        if entry.get("aggregation", "mean") != "mean":
            raise _refuse(path, "metric_list", f"aggregation {entry['aggregation']!r} of metric {name!r}")
        if name == "acc" and output_type == "multiple_choice":
            out.append({"metric": "acc"})
        elif isinstance(name, str) and name.startswith("llmjp:"):
            out.append({"metric": name})
        else:
            raise _refuse(path, "metric_list", f"metric {name!r} (hyouka maps acc for multiple_choice; "
                          "its own definitions of others differ, see the README)")
    return out


def spec_from_config(path: Path, cfg: dict[str, Any]) -> TaskSpec:
    """A hyouka spec for the lm-eval task ``cfg`` (read from ``path``), or a refusal naming the key."""
    unknown = set(cfg) - _HANDLED - _IGNORED
    if unknown:
        raise LmEvalImportError(f"{path}: lm-eval keys hyouka cannot reproduce: {', '.join(sorted(unknown))}")
    if "task" not in cfg:
        raise _refuse(path, "task", "missing task name")
    output_type = cfg.get("output_type", "generate_until")
    if output_type not in ("multiple_choice", "generate_until"):
        raise _refuse(path, "output_type", f"{output_type!r} (hyouka scores multiple_choice and generate_until)")
    if int(cfg.get("repeats", 1)) != 1:
        raise _refuse(path, "repeats", "several samples per document")
    eval_split = cfg.get("test_split") or cfg.get("validation_split")
    if not eval_split:
        raise _refuse(path, "test_split", "neither test_split nor validation_split is given")
    fewshot_cfg = dict(cfg.get("fewshot_config") or {})
    fewshot_split = fewshot_cfg.pop("split", None) or cfg.get("fewshot_split") or cfg.get("training_split")
    if fewshot_split is None and cfg.get("validation_split") and cfg.get("validation_split") != eval_split:
        fewshot_split = cfg["validation_split"]
    sampler = fewshot_cfg.pop("sampler", "default")
    if sampler not in ("default", "first_n"):
        raise _refuse(path, "fewshot_config.sampler", f"{sampler!r} (hyouka has default and first_n)")
    for key in ("target_delimiter", "fewshot_delimiter"):
        if key in fewshot_cfg and fewshot_cfg.pop(key) != cfg.get(key, " " if key == "target_delimiter" else "\n\n"):
            raise _refuse(path, f"fewshot_config.{key}", "a few-shot delimiter different from the query's")
    if fewshot_cfg:
        raise _refuse(path, "fewshot_config", f"options {sorted(fewshot_cfg)}")
    description = cfg.get("description") or ""
    if not isinstance(description, str):
        raise _refuse(path, "description", "expected a template")
    process_docs = cfg.get("process_docs")
    resolved_process_docs = None
    if process_docs is not None:
        if not isinstance(process_docs, FunctionRef):
            raise _refuse(path, "process_docs", "expected !function module.name")
        from hyouka.tasks.process_docs import resolve_reference

        resolved_process_docs = resolve_reference(process_docs.reference, process_docs.folder, process_docs.path)
    mc = output_type == "multiple_choice"
    data = {
        "task": str(cfg["task"]),
        "version": f"lm-eval-{(cfg.get('metadata') or {}).get('version', '0')}",
        "description": description,
        "dataset": _dataset(path, cfg, eval_split, fewshot_split),
        "output_type": output_type,
        "modes": ["loglikelihood"] if mc else ["generate"],
        "doc_to_text": _template(path, "doc_to_text", cfg.get("doc_to_text", "")),
        "doc_to_choice": _choices(path, cfg.get("doc_to_choice")),
        "doc_to_target": _template(path, "doc_to_target", cfg.get("doc_to_target", "")),
        "target_delimiter": cfg.get("target_delimiter", " "),
        "fewshot_delimiter": cfg.get("fewshot_delimiter", "\n\n"),
        "num_fewshot": int(cfg.get("num_fewshot") or 0),
        "fewshot": {"sampler": "first_n" if sampler == "first_n" else "lm-eval", "seed": LM_EVAL_FEWSHOT_SEED},
        "layout": "raw",
        "process_docs": resolved_process_docs,
        "metric_list": _metrics(path, cfg, output_type),
    }
    if not mc:
        data["generation"] = _generation(path, cfg)
    elif cfg.get("generation_kwargs") or cfg.get("filter_list"):
        raise _refuse(path, "generation_kwargs", "generation options on a multiple_choice task")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise LmEvalImportError(f"{path}: the lm-eval task maps to an invalid hyouka task:\n{exc}") from exc
    spec.dataset._files_checked = True  # each file was checked to lie in the task's folder
    return spec


def load_lm_eval_yaml(path: str | Path) -> TaskSpec:
    """An lm-eval task file (its ``include`` chain resolved) as a hyouka spec."""
    path = Path(path)
    return spec_from_config(path, read_config(path))


def load_lm_eval_task(name: str) -> TaskSpec:
    """``lm-eval:NAME``: the task of that name shipped with the installed lm_eval package."""
    return load_lm_eval_yaml(find_lm_eval_task(name.removeprefix(PREFIX)))
