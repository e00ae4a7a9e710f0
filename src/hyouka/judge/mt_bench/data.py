"""Japanese MT-Bench files in FastChat's layout: questions, reference answers, answers, judgments.

The folder is ``fastchat/llm_judge/data/japanese_mt_bench`` of Stability AI's FastChat fork
(``question.jsonl``, ``reference_answer/<model>.jsonl``, ``model_answer/<model>.jsonl``,
``model_judgment/<judge>_single.jsonl``). Question ids are strings everywhere here (the
published files mix ints and strings).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CATEGORIES",
    "NEED_REF_CATEGORIES",
    "TEMPERATURES",
    "MTBenchDataError",
    "Question",
    "load_judgments",
    "load_model_answers",
    "load_questions",
    "load_reference_answers",
    "mt_bench_dir",
]

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
NEED_REF_CATEGORIES = ("math", "reasoning", "coding")
# FastChat's sampling temperature per category when generating answers
TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
                "reasoning": 0.0, "stem": 0.1, "humanities": 0.1}
DEFAULT_REFERENCE = "gpt-4"
_WHERE = ("Japanese MT-Bench is in Stability AI's FastChat fork (github.com/Stability-AI/FastChat, branch jp-stable), "
          "folder fastchat/llm_judge/data/japanese_mt_bench; pass its path as --data-dir / data_dir "
          "or set HYOUKA_MT_BENCH_DIR")


class MTBenchDataError(FileNotFoundError):
    """The MT-Bench folder or one of its files is missing or malformed."""


@dataclass(frozen=True)
class Question:
    question_id: str
    category: str
    turns: tuple[str, ...]


def mt_bench_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The MT-Bench folder from an option or ``HYOUKA_MT_BENCH_DIR``, checked to hold ``question.jsonl``."""
    value = explicit or os.environ.get("HYOUKA_MT_BENCH_DIR")
    if not value:
        raise MTBenchDataError(f"no MT-Bench data folder given. {_WHERE}")
    root = Path(value).expanduser()
    if not (root / "question.jsonl").is_file():
        raise MTBenchDataError(f"{root} holds no question.jsonl. {_WHERE}")
    return root


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise MTBenchDataError(f"file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise MTBenchDataError(f"{path}:{number}: not JSON ({exc})") from None


def load_questions(root: Path, *, categories: tuple[str, ...] | None = None) -> list[Question]:
    """The questions in file order (optionally only some categories)."""
    out = [
        Question(str(r["question_id"]), str(r["category"]), tuple(r["turns"]))
        for r in _jsonl(root / "question.jsonl")
    ]
    return [q for q in out if categories is None or q.category in categories]


def load_model_answers(path: Path) -> dict[str, tuple[str, ...]]:
    """A ``model_answer`` file: question id -> the answer of each turn (first choice)."""
    return {str(r["question_id"]): tuple(r["choices"][0]["turns"]) for r in _jsonl(path)}


def load_reference_answers(root: Path, name: str = DEFAULT_REFERENCE) -> dict[str, tuple[str, ...]]:
    """Reference answers (``reference_answer/<name>.jsonl``) used to grade math, reasoning and coding."""
    path = root / "reference_answer" / f"{name}.jsonl"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "reference_answer").glob("*.jsonl"))
        raise MTBenchDataError(f"no reference answers {name!r} in {root / 'reference_answer'}; found: {known}")
    return load_model_answers(path)


def load_judgments(path: Path) -> list[dict[str, Any]]:
    """FastChat single-answer judgments, with ``question_id`` as a string and ``turn`` as an int."""
    return [{**r, "question_id": str(r["question_id"]), "turn": int(r.get("turn", 1))} for r in _jsonl(Path(path))]


def file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
