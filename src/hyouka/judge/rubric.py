"""Rubrics as data: a versioned YAML file per metric and language, validated by pydantic.

Built-in rubrics live in ``hyouka/judge/rubrics/<name>.<language>.yaml``; a user's own
rubric is a file of the same shape (see :class:`Rubric`). Files whose name starts with
``_`` hold prompt frames, not rubrics.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from hyouka.yamlio import load_yaml

__all__ = ["RUBRIC_DIR", "Rubric", "RubricError", "RubricInput", "builtin_rubric_names", "load_rubric", "prompt_data"]

RUBRIC_DIR = Path(__file__).parent / "rubrics"
RubricInput = Literal["question", "answer", "ground_truth", "context"]


class RubricError(ValueError):
    """A rubric is unknown, unreadable or invalid."""


class Rubric(BaseModel):
    """What a judge grades, on which inputs, on what scale, with a description of every level."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    language: str = "ja"
    title: str
    description: str = ""
    inputs: list[RubricInput] = Field(description="fields shown to the judge; 'answer' is one unless the rubric "
                                                  "has its own template")
    scale: tuple[int, int] = (1, 5)
    criteria: str
    levels: dict[int, str] = Field(description="score -> what an answer at that score looks like")
    template: str | None = Field(None, description="jinja2 prompt replacing the language's frame")
    system: str | None = Field(None, description="system prompt replacing the language's frame")
    _source: str | None = PrivateAttr(None)  # the file it was read from, for error messages

    @property
    def source(self) -> str:
        """The rubric file, or its name when built in memory."""
        return self._source or f"rubric {self.name}"

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        lo, hi = self.scale
        if lo >= hi:
            raise ValueError(f"scale {self.scale} must go from low to high")
        if "answer" not in self.inputs and self.template is None:
            # a rubric grading something else (the retrieved context) says so in a template of its own
            raise ValueError("a rubric grades an answer: 'answer' must be among its inputs (or the rubric gives "
                             "its own template, as context_relevance does)")
        outside = [s for s in self.levels if not lo <= s <= hi]
        if outside:
            raise ValueError(f"levels {outside} are outside the scale {lo}-{hi}")
        return self

    @property
    def needs(self) -> list[str]:
        """Inputs besides the answer that each row must supply."""
        return [f for f in self.inputs if f != "answer"]

    def content_hash(self) -> str:
        """Hash of everything that changes a grade; recorded with every judge run."""
        blob = json.dumps(self.model_dump(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "language": self.language, "hash": self.content_hash()}


def builtin_rubric_names() -> list[str]:
    """Names of the built-in rubrics (each exists in Japanese and English)."""
    return sorted({p.name.split(".")[0] for p in RUBRIC_DIR.glob("*.yaml") if not p.name.startswith("_")})


def _read(path: Path) -> Rubric:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RubricError(f"cannot read rubric {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise RubricError(f"rubric {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "save it as UTF-8") from None
    if not isinstance(data, dict):
        raise RubricError(f"rubric {path} is not a mapping")
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(f"invalid rubric {path}:\n{exc}") from exc
    rubric._source = str(path)
    return rubric


@cache
def _builtin(name: str, language: str) -> Rubric:
    path = RUBRIC_DIR / f"{name}.{language}.yaml"
    if not path.is_file():
        known = ", ".join(builtin_rubric_names())
        raise RubricError(f"no built-in rubric {name!r} in language {language!r}; built-in rubrics: {known}")
    return _read(path)


def load_rubric(name_or_path: str | Path, language: str = "ja") -> Rubric:
    """A built-in rubric by name (in ``language``), or a rubric file by path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        return _read(Path(text).expanduser())
    return _builtin(text, language)


@cache
def prompt_data(name: str) -> dict[str, Any]:
    """A prompt data file of the rubrics folder (``_frames``, ``_mt_bench``)."""
    return load_yaml((RUBRIC_DIR / f"_{name}.yaml").read_text(encoding="utf-8"))
