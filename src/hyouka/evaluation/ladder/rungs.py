"""The rungs of a prompting ladder, as data: a shorthand (``zero-shot,few-shot:3,rag:4,few-shot:3+rag:4``)
or a YAML file.

A rung is one prompt configuration: how many solved examples (``fewshot``), how many retrieved
chunks (``rag``), and the prompt's template (``prompt_family`` for benchmark tasks,
``system_prompt`` for one's own data). A rung may name its own ``model`` (with ``model_options``),
e.g. a fine-tuned model: such rungs form later lines of the ladder, climbed after the models
given to the whole ladder (the outer loop: off-the-shelf first, then fine-tuned).

YAML::

    rungs:
      - zero-shot
      - few-shot:3
      - {name: polite, fewshot: 3, system_prompt: 丁寧に答えてください。}
      - {name: ft, model: "hf:./my-finetune", fewshot: 0}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hyouka.yamlio import load_yaml

__all__ = ["DEFAULT_RUNGS", "Line", "Rung", "RungError", "ladder_lines", "load_rungs", "parse_rung", "parse_rungs"]

DEFAULT_RUNGS = "zero-shot,few-shot:3"
_PART = re.compile(r"^(?:(?P<zero>zero-shot|0-shot)|(?:few-?shot:(?P<k>\S*))|(?P<n>\d+)-shot|rag:(?P<rag>\S*))$")


class RungError(ValueError):
    """A rung that cannot be read: the shorthand or the YAML file, named with the problem."""


class Rung(BaseModel):
    """One prompt configuration of the ladder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="the rung's label (default: made from its settings)")
    fewshot: int = Field(0, ge=0, description="solved examples before each question")
    rag: int | None = Field(None, ge=1, description="chunks retrieved from the index and put in the prompt")
    prompt_family: str | None = Field(None, description="benchmark tasks: the prompt layout (plain, alpaca…)")
    system_prompt: str | None = Field(None, description="one's own data: the system message")
    model: str | None = Field(None, description="a model of its own climbing this rung (e.g. a fine-tuned one)")
    model_options: dict[str, Any] = Field(default_factory=dict, description="options of that model's backend")

    @model_validator(mode="after")
    def _named(self) -> Rung:
        if not self.name:
            object.__setattr__(self, "name", describe(self))
        if self.model_options and self.model is None:
            raise ValueError("model_options are for a rung's own model: give model too")
        return self

    @property
    def uses_rag(self) -> bool:
        return self.rag is not None


def describe(rung: Rung) -> str:
    """A label made from a rung's settings, in the shorthand's words."""
    parts = [f"few-shot:{rung.fewshot}"] if rung.fewshot else []
    if rung.rag is not None:
        parts.append(f"rag:{rung.rag}")
    if rung.prompt_family:
        parts.append(rung.prompt_family)
    if rung.system_prompt:
        parts.append("system prompt")
    return "+".join(parts) or "zero-shot"


def parse_rung(text: str) -> Rung:
    """One rung of the shorthand: ``zero-shot``, ``few-shot:N`` (or ``N-shot``), ``rag:K``, joined by ``+``."""
    fewshot = 0
    rag = None
    seen: set[str] = set()
    for part in (p.strip() for p in text.split("+")):
        match = _PART.match(part)
        if match is None:
            raise RungError(f"rung {text!r}: {part!r} is not a rung; use zero-shot, few-shot:N, N-shot or rag:K, "
                            "joined by + (e.g. few-shot:3+rag:4)")
        kind = "rag" if match["rag"] is not None else "zero" if match["zero"] else "fewshot"
        if kind in seen or (kind != "rag" and seen & {"zero", "fewshot"}):
            raise RungError(f"rung {text!r} says {'the number of examples' if kind != 'rag' else 'rag'} twice")
        seen.add(kind)
        if kind == "rag":
            rag = _count(match["rag"], text, "rag", "chunks to retrieve, e.g. rag:4", minimum=1)
        elif kind == "fewshot":
            fewshot = _count(match["k"] if match["k"] is not None else match["n"], text, "few-shot",
                             "solved examples, e.g. few-shot:3", minimum=0)
    return Rung(name=text.strip(), fewshot=fewshot, rag=rag)


def _count(value: str, text: str, what: str, example: str, *, minimum: int) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise RungError(f"rung {text!r}: {what} takes a number of {example}; got {value!r}")
    return int(value)


def parse_rungs(text: str) -> list[Rung]:
    """The comma-separated shorthand, e.g. ``zero-shot,few-shot:3,rag:4,few-shot:3+rag:4``."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise RungError("--rungs is empty; give e.g. zero-shot,few-shot:3")
    if "" in items:
        raise RungError(f"--rungs {text!r} has an empty rung (two commas, or one at an end)")
    return _unique([parse_rung(t) for t in items], "--rungs")


def load_rungs(source: str | Path | Sequence[str | dict[str, Any] | Rung]) -> list[Rung]:
    """Rungs from the shorthand, a YAML file (``rungs:`` list, or a bare list), or a list of rungs or mappings."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if isinstance(source, Path) or path.suffix in (".yaml", ".yml"):
            return _from_file(path)
        return parse_rungs(str(source))
    return _unique([_item(item, f"rung {i + 1}") for i, item in enumerate(source)], "the rungs")


def _from_file(path: Path) -> list[Rung]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RungError(f"cannot read rungs file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RungError(f"rungs file {path} is not valid YAML: {exc}") from exc
    if isinstance(data, dict):
        extra = set(data) - {"rungs"}
        if extra:
            raise RungError(f"rungs file {path}: unknown key(s) {', '.join(sorted(map(str, extra)))}; "
                            "it holds a `rungs:` list")
        data = data.get("rungs")
    if not isinstance(data, list) or not data:
        raise RungError(f"rungs file {path}: give a non-empty `rungs:` list")
    return _unique([_item(item, f"{path}: rung {i + 1}") for i, item in enumerate(data)], str(path))


def _item(item: str | dict[str, Any] | Rung, where: str) -> Rung:
    if isinstance(item, Rung):
        return item
    if isinstance(item, str):
        try:
            return parse_rung(item)
        except RungError as exc:
            raise RungError(f"{where}: {exc}") from None
    if not isinstance(item, dict):
        raise RungError(f"{where}: a rung is a shorthand string or a mapping, got {type(item).__name__}")
    try:
        return Rung.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'rung'}: {e['msg']}" for e in exc.errors())
        raise RungError(f"{where}: {problems}") from None


def _unique(rungs: list[Rung], where: str) -> list[Rung]:
    seen: set[tuple[str | None, str]] = set()
    for rung in rungs:
        key = (rung.model, rung.name)
        if key in seen:
            raise RungError(f"{where}: rung {rung.name!r} is given twice")
        seen.add(key)
    return rungs


@dataclass
class Line:
    """One model climbing its rungs, in order; ``own`` when the rungs name the model (the outer loop)."""

    model: Any  # a spec or a built backend
    options: dict[str, Any]
    rungs: list[Rung] = field(default_factory=list)
    own: bool = False


def ladder_lines(models: Sequence[tuple[Any, dict[str, Any]]], rungs: Sequence[Rung]) -> list[Line]:
    """Every model given climbs the rungs that name no model; each model a rung names climbs its rungs after."""
    shared = [r for r in rungs if r.model is None]
    lines = [Line(model, dict(options), list(shared)) for model, options in models] if shared else []
    own: dict[str, Line] = {}
    for rung in rungs:
        if rung.model is None:
            continue
        line = own.get(rung.model)
        if line is None:
            line = own[rung.model] = Line(rung.model, dict(rung.model_options), [], own=True)
        elif rung.model_options and rung.model_options != line.options:
            raise RungError(f"rungs of model {rung.model} give different model_options; give them once, alike")
        line.rungs.append(rung)
    lines += own.values()
    if not lines:
        raise RungError("the ladder has no cells: give --model, or rungs that name a model")
    if shared and not models:
        raise RungError(f"rungs {', '.join(r.name for r in shared)} name no model: give --model to climb them")
    return lines
