"""Evaluation data: CSV, JSON lines, JSON, Parquet or a pandas DataFrame, with a column mapping.

Columns: the inputs (question or prompt), the ground truth (a string or a list of accepted
answers), the context (a string or a list of passages), existing predictions, and a row id.
Unnamed columns are found by their usual names (``inputs``/``question``…, ``ground_truth``…,
``context``…).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hyouka.errors import ArgumentError

__all__ = ["DataError", "EvalRow", "EvalTable", "load_table"]

INPUT_NAMES = ("inputs", "input", "question", "prompt", "instruction", "query")
TARGET_NAMES = ("ground_truth", "targets", "target", "reference", "expected_response")
CONTEXT_NAMES = ("context", "contexts", "retrieved_context", "passage")


class DataError(ValueError):
    """The evaluation data is unreadable or lacks a column it needs."""


class ColumnNotFoundError(DataError, ArgumentError):
    """A column named by an argument (``targets=``, ``--targets-column``) is not in the data."""


@dataclass(frozen=True)
class EvalRow:
    """One row to evaluate; ``ground_truth`` may hold several accepted answers."""

    index: int
    id: str
    inputs: str | None
    ground_truth: str | list[str] | None = None
    context: str | None = None
    prediction: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ground_truth_text(self) -> str | None:
        if isinstance(self.ground_truth, list):
            return " / ".join(self.ground_truth) if self.ground_truth else None
        return self.ground_truth


@dataclass
class EvalTable:
    """The rows, the columns they came from, and where the data came from (with its hash)."""

    rows: list[EvalRow]
    columns: dict[str, str | None]
    source: str
    digest: str


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _plain(value: Any) -> Any:
    """A JSON-ready value (numpy scalars and arrays become Python ones, NaN becomes None)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str | None:
    value = _plain(value)
    if _missing(value):
        return None
    if isinstance(value, list):
        parts = [str(v) for v in value if not _missing(v)]
        return "\n\n".join(parts) or None
    return str(value)


def _prediction(value: Any) -> str | None:
    """An existing prediction; an empty answer stays an (empty) answer."""
    value = _plain(value)
    if value is None:
        return None
    return "\n\n".join(map(str, value)) if isinstance(value, list) else str(value)


def _targets(value: Any) -> str | list[str] | None:
    value = _plain(value)
    if _missing(value):
        return None
    if isinstance(value, list):
        answers = [str(v) for v in value if not _missing(v)]
        return answers or None
    return str(value)


def _read(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix not in (".csv", ".tsv", ".jsonl", ".ndjson", ".json"):
        raise DataError(f"unsupported data file {path.name}: use .csv, .tsv, .jsonl, .json or .parquet")
    text = _text_of(path, encoding)
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(io.StringIO(text), sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    if suffix in (".jsonl", ".ndjson"):
        records = []
        for line_no, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 is text
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    where = f"{path}:{line_no}"
                    raise DataError(f"{where}: malformed JSON line ({exc.msg} at column {exc.colno})") from None
        return pd.DataFrame(records)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    return pd.DataFrame(data if isinstance(data, list) else data.get("data", data))


def _text_of(path: Path, encoding: str) -> str:
    """The file's text in ``encoding`` (UTF-8 with or without a byte-order mark by default), naming the file, line
    and byte when it does not decode."""
    from hyouka.tasks.loaders import DataError as LoaderError
    from hyouka.tasks.loaders import decode_text

    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # spreadsheet exports often start with a BOM
    try:
        return decode_text(path, path.read_bytes(), encoding)
    except LoaderError as exc:
        raise DataError(str(exc)) from None


def _pick(frame: pd.DataFrame, given: str | None, candidates: Sequence[str], role: str) -> str | None:
    if given is not None:
        if given not in frame.columns:
            columns = ", ".join(map(str, frame.columns)).replace("{", "{{").replace("}", "}}")
            raise ColumnNotFoundError(f"{{{role}}} is not a column of the data; columns: {columns}",
                                      **{role: repr(given)})
        return given
    return next((c for c in candidates if c in frame.columns), None)


def _digest(frame: pd.DataFrame) -> str:
    blob = frame.to_json(orient="records", force_ascii=False, default_handler=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def predictions_name(source: str, column: str) -> str:
    """The model name of a column of existing predictions: ``predictions:<data source>:<column>``, the one name
    ``evaluate`` and ``pairwise`` store it under (so studies, judges and people match the same answers)."""
    return f"predictions:{source}:{column}"


def load_table(
    data: str | Path | pd.DataFrame | Sequence[dict[str, Any]],
    *,
    inputs: str | None = None,
    targets: str | None = None,
    context: str | None = None,
    predictions: str | None = None,
    id_column: str | None = None,
    limit: int | None = None,
    encoding: str = "utf-8",
) -> EvalTable:
    """Read the data (text files in ``encoding``) and map its columns; ``DataError`` names a missing column and the
    ones present."""
    if isinstance(data, pd.DataFrame):
        frame, source = data, "DataFrame"
    elif isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        frame, source = _read(path, encoding), path.name
    else:
        frame, source = pd.DataFrame(list(data)), "records"
    if limit:
        frame = frame.head(limit)
    columns = {
        "inputs": _pick(frame, inputs, INPUT_NAMES, "inputs"),
        "targets": _pick(frame, targets, TARGET_NAMES, "targets"),
        "context": _pick(frame, context, CONTEXT_NAMES, "context"),
        "predictions": _pick(frame, predictions, (), "predictions"),
        "id": _pick(frame, id_column, ("id", "_id", "question_id", "qid"), "id_column"),
    }
    rows = []
    for index, record in enumerate(frame.to_dict(orient="records")):
        record = {str(k): _plain(v) for k, v in record.items()}
        rid = record.get(columns["id"]) if columns["id"] else None
        rows.append(
            EvalRow(
                index=index,
                id=str(rid) if not _missing(rid) else str(index),
                inputs=_text(record.get(columns["inputs"])) if columns["inputs"] else None,
                ground_truth=_targets(record.get(columns["targets"])) if columns["targets"] else None,
                context=_text(record.get(columns["context"])) if columns["context"] else None,
                prediction=_prediction(record.get(columns["predictions"])) if columns["predictions"] else None,
                fields=record,
            )
        )
    return EvalTable(rows=rows, columns=columns, source=source, digest=_digest(frame))
