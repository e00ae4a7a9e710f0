"""Documents in: folders of ``.txt``/``.md``/``.html``/``.pdf`` files, or a table with a text column.

A :class:`Document` keeps an id (a file's path inside the folder, or the table's id column, else
its row number), a title (an HTML ``<title>``, a Markdown ``# heading``, a PDF's title, a title
column, else the file name) and its text. PDFs are read with ``pypdf`` (the ``rag`` extra).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

__all__ = ["DOCUMENT_SUFFIXES", "TABLE_SUFFIXES", "Document", "DocumentError", "load_documents"]

DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
TABLE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq")
TEXT_COLUMNS = ("text", "content", "body", "context", "passage", "document")


class DocumentError(ValueError):
    """Documents that cannot be read: a missing path, an unknown format, a table without its text column."""


@dataclass(frozen=True)
class Document:
    """One document: its id, title and text, and where it came from."""

    id: str
    text: str
    title: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the title and text: what decides whether an index re-chunks the document."""
        return hashlib.sha256(f"{self.title}\0{self.text}".encode()).hexdigest()[:24]


class _HTMLText(HTMLParser):
    """The visible text and ``<title>`` of an HTML page (scripts, styles and templates dropped)."""

    _SKIP = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
                        "pre", "blockquote", "table", "ul", "ol", "dt", "dd"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        return "\n".join(line for line in lines if line)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None


def _markdown_title(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def _pdf(path: Path) -> tuple[str, str]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise ImportError("reading PDF files needs pypdf: pip install 'hyouka[rag]'") from None
    try:
        reader = PdfReader(path)
        text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
        title = str((reader.metadata or {}).get("/Title") or "")
    except (PdfReadError, OSError, ValueError) as exc:
        raise DocumentError(f"cannot read PDF {path}: {exc}") from None
    return text.strip(), title


def _file_document(path: Path, doc_id: str) -> Document:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text, title = _pdf(path)
    elif suffix in (".html", ".htm"):
        parser = _HTMLText()
        parser.feed(_read_text(path))
        text, title = parser.text(), " ".join(parser.title.split())
    else:
        text = _read_text(path)
        title = _markdown_title(text) if suffix in (".md", ".markdown") else ""
    return Document(id=doc_id, text=text, title=title or path.stem, source=str(path))


def _folder(root: Path) -> Iterator[Document]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for path in files:
        yield _file_document(path, path.relative_to(root).as_posix())


def read_table(path: Path) -> Any:
    """A JSONL, JSON, CSV/TSV or Parquet table as a DataFrame (text cells kept as text)."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                               encoding="utf-8-sig")
        if suffix == ".json":
            data = json.loads(_read_text(path))
            return pd.DataFrame(data if isinstance(data, list) else data.get("data", data))
        rows = []
        for line_no, line in enumerate(_read_text(path).split("\n"), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DocumentError(f"{path}:{line_no}: malformed JSON line ({exc.msg})") from None
        return pd.DataFrame(rows)
    except (OSError, ValueError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(f"cannot read {path}: {exc}") from None


def _pick(columns: Sequence[str], given: str | None, candidates: Sequence[str], role: str, path: Path) -> str | None:
    if given is not None:
        if given not in columns:
            raise DocumentError(f"{path}: no {role} column {given!r}; columns: {', '.join(map(str, columns))}")
        return given
    return next((c for c in candidates if c in columns), None)


def _table(path: Path, text_column: str | None, title_column: str | None, id_column: str | None) -> Iterator[Document]:
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    text_col = _pick(columns, text_column, TEXT_COLUMNS, "text", path)
    if text_col is None:
        raise DocumentError(f"{path}: no text column (looked for {', '.join(TEXT_COLUMNS)}); name it with "
                            f"--text-column; columns: {', '.join(columns)}")
    title_col = _pick(columns, title_column, ("title",), "title", path)
    id_col = _pick(columns, id_column, ("id", "doc_id", "_id"), "id", path)
    seen: set[str] = set()
    for row_no, record in enumerate(frame.to_dict(orient="records")):
        text = record.get(text_col)
        if text is None or (isinstance(text, float) and text != text):
            raise DocumentError(f"{path}: row {row_no + 1} has no {text_col!r}")
        doc_id = str(record[id_col]) if id_col is not None else str(row_no)
        if doc_id in seen:
            raise DocumentError(f"{path}: row {row_no + 1} repeats the document id {doc_id!r} of column {id_col!r}")
        seen.add(doc_id)
        meta = {k: v for k, v in record.items() if k not in (text_col, title_col, id_col) and _plain(v)}
        title = str(record.get(title_col) or "") if title_col else ""
        yield Document(id=doc_id, text=str(text), title=title, source=f"{path}:{row_no + 1}", meta=meta)


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and value == value


def load_documents(
    path: str | Path,
    *,
    text_column: str | None = None,
    title_column: str | None = None,
    id_column: str | None = None,
) -> list[Document]:
    """The documents of a folder (``.txt``, ``.md``, ``.html``, ``.pdf``, recursively) or of a single file.

    A ``.jsonl``/``.json``/``.csv``/``.tsv``/``.parquet`` file is a table: one document per row, its
    text from ``text_column`` (default: the first of ``text``, ``content``, ``body``, ``context``…),
    title and id from ``title_column`` / ``id_column`` when present.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DocumentError(f"no such file or folder: {root}")
    if root.is_dir():
        docs = list(_folder(root))
        if not docs:
            raise DocumentError(f"{root} holds no documents ({', '.join(DOCUMENT_SUFFIXES)})")
        return docs
    suffix = root.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return list(_table(root, text_column, title_column, id_column))
    if suffix in DOCUMENT_SUFFIXES:
        return [_file_document(root, root.name)]
    raise DocumentError(f"unsupported document file {root.name}: use a folder, "
                        f"{', '.join(DOCUMENT_SUFFIXES)} or a table ({', '.join(TABLE_SUFFIXES)})")
