"""Read task documents from local files (JGLUE layout) or the Hugging Face hub.

Every error names the file, and where it applies the line and the column, so
a user can fix bad data without guessing.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyouka import jsonio
from hyouka.tasks.parsed_files import load_parsed
from hyouka.tasks.spec import DatasetSpec

JGLUE_HINT = (
    "JGLUE lives at https://github.com/yahoojapan/JGLUE: clone it and pass its datasets/ folder "
    "with --data-dir (or set HYOUKA_JGLUE_DIR)"
)


class DataError(ValueError):
    """Task data is missing or malformed."""


class DataPathError(DataError):
    """A task file names a data file outside the data folder."""


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False  # decode_text names the unknown encoding


def decode_text(path: Path, raw: bytes, encoding: str = "utf-8") -> str:
    """``raw`` (the bytes of ``path``) as text; a DataError names the file, line, column and byte that do not decode."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r} (e.g. utf-8, cp932, shift_jis, euc_jp)") from None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise DataError(
            f"{path}:{line}: byte 0x{byte} at column {column} is not valid {encoding} ({exc.reason}); "
            "if the file is in another encoding (Shift-JIS files are cp932), name it: `encoding:` under the task "
            "file's dataset, or --encoding for `hyouka eval`"
        ) from None


def read_jsonl(path: Path, required_fields: Sequence[str] = (), encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Parse a JSON-lines file in ``encoding``; blank lines are skipped."""
    raw = path.read_bytes()
    source: bytes | str = raw if _is_utf8(encoding) else decode_text(path, raw, encoding)
    try:
        docs = [jsonio.loads(line) for line in _lines(source) if line.strip()]
    except jsonio.DecodeError:
        docs = None
    required = frozenset(required_fields)
    if docs is not None and all(type(doc) is dict and required <= doc.keys() for doc in docs):
        return docs
    text = source if isinstance(source, str) else decode_text(path, raw, encoding)
    return _read_jsonl_line_by_line(path, text, required_fields)  # slower, and names the first bad line


def _lines(source: bytes | str) -> list[Any]:
    """Lines split at ``\\n``, ``\\r\\n`` or ``\\r`` only (``str.splitlines`` also cuts at U+2028, which JSON text
    may hold)."""
    if isinstance(source, bytes):
        return source.splitlines()
    return source.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _read_jsonl_line_by_line(path: Path, text: str, required_fields: Sequence[str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for line_no, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            doc = jsonio.loads(line)
        except jsonio.DecodeError as exc:
            raise DataError(f"{path}:{line_no}: malformed JSON line ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(doc, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(doc).__name__}")
        missing = [name for name in required_fields if name not in doc]
        if missing:
            raise DataError(
                f"{path}:{line_no}: missing column(s) {', '.join(map(repr, missing))}; "
                f"the line has {', '.join(map(repr, doc))}"
            )
        docs.append(doc)
    return docs


def read_squad(path: Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Flatten a SQuAD-format document (in ``encoding``) into one doc per question."""
    raw = path.read_bytes()
    try:
        data = jsonio.loads(raw if _is_utf8(encoding) else decode_text(path, raw, encoding))
    except jsonio.DecodeError as exc:
        decode_text(path, raw, encoding)  # text that does not decode is the problem to name
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or "data" not in data:
        raise DataError(f"{path}: not a SQuAD-format file (no top-level 'data' list)")
    docs: list[dict[str, Any]] = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if context is None:
                raise DataError(f"{path}: a paragraph of {article.get('title')!r} has no 'context'")
            for qa in paragraph.get("qas", []):
                for name in ("id", "question", "answers"):
                    if name not in qa:
                        raise DataError(f"{path}: question {qa.get('id', '?')!r} is missing column {name!r}")
                docs.append(
                    {
                        "id": qa["id"],
                        "title": article.get("title", ""),
                        "context": context,
                        "question": qa["question"],
                        "answers": [a["text"] for a in qa["answers"]],
                        "is_impossible": qa.get("is_impossible", False),
                    }
                )
    return docs


def _read_file(spec: DatasetSpec, path: Path) -> list[dict[str, Any]]:
    if spec.format == "squad":
        return read_squad(path, spec.encoding)
    return read_jsonl(path, spec.required_fields, spec.encoding)


def _from_hub(spec: DatasetSpec, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(
            f"no local data given, and loading {spec.hf_path} from the hub needs `pip install datasets`. "
            f"{spec.source_hint or JGLUE_HINT}"
        ) from exc
    hub_split = spec.hf_splits.get(split, split)
    try:
        rows = datasets.load_dataset(spec.hf_path, spec.hf_name, split=hub_split)
    except Exception as exc:
        raise DataError(
            f"could not load {spec.hf_path} ({spec.hf_name}, split {hub_split}) from the hub: {exc}. "
            f"{spec.source_hint or JGLUE_HINT}"
        ) from exc
    return [dict(row) for row in rows]


def resolve_file(spec: DatasetSpec, split: str, data_dir: Path | None, data_file: Path | None) -> Path | None:
    """The local file for a split, or None when the task should come from the hub."""
    if data_file is not None and split == spec.eval_split:
        return data_file
    if data_dir is None:
        return None
    name = spec.files.get(split)
    if name is None:
        raise DataError(f"the task has no file for split {split!r}; known splits: {', '.join(spec.files)}")
    return inside_data_dir(data_dir, spec.local_dir, name)


def inside_data_dir(data_dir: Path, *parts: str | None) -> Path:
    """``data_dir / parts``, refused when the parts (from a task file) lead out of the data folder.

    Task files are shared like data: a ``local_dir: ../..`` or an absolute file name would
    read any file and send it to the model. Files elsewhere are given on the command line.
    """
    relative = os.path.join(*(p for p in parts if p))
    candidate = os.path.normpath(os.path.join(data_dir, relative))
    root = os.path.normpath(data_dir)
    if os.path.isabs(relative) or os.path.commonpath([root, candidate]) != root:
        raise DataPathError(
            f"the task file's dataset path {relative!r} leads out of the data folder {data_dir}; task files may "
            "only name files inside it (give a file elsewhere on the command line: --data-file TASK=PATH)"
        )
    return Path(candidate)


def load_split(
    spec: DatasetSpec,
    split: str,
    *,
    data_dir: Path | None = None,
    data_file: Path | None = None,
) -> list[dict[str, Any]]:
    """Documents of one split, each with a stable ``_id`` (local files are parsed once per process)."""
    path = resolve_file(spec, split, data_dir, data_file)
    if path is None:
        if spec.hf_path is None:
            raise DataError(f"no data file given for this task. {spec.source_hint or JGLUE_HINT}")
        return _with_ids(spec, _from_hub(spec, split))
    if not path.is_file():
        raise DataError(f"data file not found: {path}. {spec.source_hint or JGLUE_HINT}")
    return load_parsed(path, lambda p: _with_ids(spec, _read_file(spec, p)), *_parse_options(spec))


def _parse_options(spec: DatasetSpec) -> tuple[str, tuple[str, ...], str | None, str]:
    """What, beside the file, decides the parsed documents."""
    return spec.format, tuple(spec.required_fields), spec.id_field, spec.encoding


def locate(spec: DatasetSpec, split: str, index: int, *, data_dir: Path | None = None,
           data_file: Path | None = None) -> str:
    """Where the ``index``-th document of a split comes from: ``file:line`` for JSON lines (errors only: it
    reads the file again), the file and question id for SQuAD files, the row for hub datasets."""
    path = resolve_file(spec, split, data_dir, data_file)
    if path is None:
        return f"{spec.hf_path} ({spec.hf_name}, split {split}) row {index}"
    if spec.format == "squad":
        return f"{path} (question {index + 1})"
    lines = (n for n, line in enumerate(path.read_bytes().splitlines(), start=1) if line.strip())
    line_no = next((n for i, n in enumerate(lines) if i == index), None)
    return f"{path}:{line_no}" if line_no is not None else str(path)


def _with_ids(spec: DatasetSpec, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, doc in enumerate(docs):
        doc["_id"] = str(doc[spec.id_field]) if spec.id_field and spec.id_field in doc else str(index)
    return docs
