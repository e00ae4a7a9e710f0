"""The ``recorded:`` backend: replay answers or judgments saved in files, with no model.

Formats, detected from the first record of a JSON lines file:

- ``answers``: FastChat/MT-Bench ``model_answer`` records (``question_id``,
  ``choices[0].turns``), matched by the request's ``question_id`` and ``turn`` tags;
- ``outputs``: records of a prompt and an output (``prompt``/``input``/``question`` and
  ``output``/``response``/``answer``/``prediction``), matched by the prompt text;
- ``judgments``: FastChat ``model_judgment`` single-answer records (``question_id``,
  ``model``, ``turn``, ``judgment``), matched by the ``question_id``, ``model`` and
  ``turn`` tags; of repeated judgments the latest (``tstamp``) is replayed;
- ``pairwise_judgments``: FastChat pairwise records (``model_1``, ``model_2``,
  ``g1_judgment``, ``g2_judgment``), matched by ``question_id``, ``model_a``,
  ``model_b`` and ``turn``; the swapped order replays ``g2_judgment``.

Tags travel on a :class:`ChatRequest`'s ``tags``, which the callers that know what a
request is about (the MT-Bench runner, the judge) build with :func:`tag_request`
for backends that ask for them (``matches_by_tags``). A request with no
recorded answer fails with ``error_type="not_recorded"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hyouka.models.base import (
    Capabilities,
    ChatRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
    Response,
)

__all__ = ["RecordedFormatError", "RecordedModel", "request_tags", "tag_request"]

NOT_RECORDED = "not_recorded"
_PROMPT_KEYS = ("prompt", "input", "inputs", "question")
_OUTPUT_KEYS = ("output", "outputs", "response", "answer", "prediction")


def tag_request(backend: Any, request: ChatRequest, tags: Mapping[str, Any]) -> Any:
    """``request`` with ``tags`` attached when ``backend`` matches requests by tags, else unchanged.

    Real endpoints get the plain request, so their cache keys depend on the prompt alone.
    """
    if not getattr(backend, "matches_by_tags", False):
        return request
    items = tuple(sorted((k, str(v)) for k, v in tags.items() if v is not None))
    return ChatRequest(request.messages, request.params, tags=items, repeat=request.repeat)


def request_tags(request: Request) -> dict[str, str]:
    """The tags of a request (empty for untagged requests)."""
    return dict(getattr(request, "tags", ()) or ())


class RecordedFormatError(ValueError):
    """A recorded file is missing, empty, or in no known format."""


def _read_records(path: Path) -> list[dict[str, Any]]:
    """The file's records, each with its 1-based line number under ``_line`` (JSON lines; 1 for a .json file)."""
    if not path.is_file():
        raise RecordedFormatError(f"recorded file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RecordedFormatError(f"{path}:{line}: not UTF-8 ({exc.reason} at byte 0x{raw[exc.start]:02x})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordedFormatError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
        records = [(1, r) for r in (data if isinstance(data, list) else [data])]
    else:
        records = []
        for line_no, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    records.append((line_no, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise RecordedFormatError(f"{path}:{line_no}: malformed JSON line ({exc.msg})") from None
    if not records or not all(isinstance(r, dict) for _, r in records):
        raise RecordedFormatError(f"{path} holds no JSON records")
    return [{**r, "_line": line_no} for line_no, r in records]


def _check_unique_answers(path: Path, records: list[dict[str, Any]]) -> None:
    """Refuse two answer records for one question: replaying them would mix the turns of both."""
    seen: dict[str, int] = {}
    for r in records:
        qid = str(r.get("question_id"))
        if qid in seen:
            raise RecordedFormatError(
                f"{path}:{r['_line']}: question_id {qid} is answered twice (also on line {seen[qid]}); "
                "keep one answer record per question"
            )
        seen[qid] = r["_line"]


def detect_format(record: Mapping[str, Any]) -> str:
    """The format of a recorded file, from one of its records."""
    if "g1_judgment" in record and "model_1" in record:
        return "pairwise_judgments"
    if "judgment" in record and "model" in record:
        return "judgments"
    if "choices" in record and "question_id" in record:
        return "answers"
    if any(k in record for k in _PROMPT_KEYS) and any(k in record for k in _OUTPUT_KEYS):
        return "outputs"
    raise RecordedFormatError(
        "unknown recorded format: expected MT-Bench model_answer records (question_id, choices), "
        "prompt/output records, or FastChat model_judgment records; got keys "
        + ", ".join(sorted(k for k in record if k != "_line"))
    )


def _first(record: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((record[k] for k in keys if k in record), None)


def _index(fmt: str, records: list[dict[str, Any]]) -> dict[tuple[str, ...], str]:
    """Map the match key of every record to the text it replays (later ``tstamp`` wins)."""
    ordered = sorted(enumerate(records), key=lambda item: (float(item[1].get("tstamp") or 0.0), item[0]))
    index: dict[tuple[str, ...], str] = {}
    for _, r in ordered:
        qid = str(r.get("question_id"))
        if fmt == "answers":
            for turn, text in enumerate(r["choices"][0]["turns"], start=1):
                index[(qid, str(turn))] = text
        elif fmt == "judgments":
            index[(qid, str(r["model"]), str(r.get("turn", 1)))] = r["judgment"]
        elif fmt == "pairwise_judgments":
            turn = str(r.get("turn", 1))
            index[(qid, str(r["model_1"]), str(r["model_2"]), turn)] = r["g1_judgment"]
            index[(qid, str(r["model_2"]), str(r["model_1"]), turn)] = r["g2_judgment"]
        else:
            prompt, output = _first(r, _PROMPT_KEYS), _first(r, _OUTPUT_KEYS)
            if prompt is not None and output is not None:
                index[(str(prompt).strip(),)] = str(output)
    return index


_KEY_TAGS = {
    "answers": ("question_id", "turn"),
    "judgments": ("question_id", "model", "turn"),
    "pairwise_judgments": ("question_id", "model_a", "model_b", "turn"),
}


class RecordedModel:
    """Replays recorded texts; ``name`` is the file's stem (FastChat's model name) unless ``model_id`` is given."""

    matches_by_tags = True

    def __init__(self, path: str | Path, *, model_id: str | None = None, format: str = "auto") -> None:
        self.path = Path(path).expanduser()
        records = _read_records(self.path)
        self.format = detect_format(records[0]) if format == "auto" else format
        if self.format not in (*_KEY_TAGS, "outputs"):
            raise RecordedFormatError(f"unknown recorded format {format!r}")
        self.name = model_id or self.path.stem
        self.capabilities = Capabilities(generate=True, chat=True)
        if self.format == "answers":
            _check_unique_answers(self.path, records)
        self._index = _index(self.format, records)
        self._sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.n_records = len(records)

    def __repr__(self) -> str:
        return f"RecordedModel({str(self.path)!r}, format={self.format!r}, {len(self._index)} entries)"

    def identity(self) -> dict[str, Any]:
        return {"backend": "recorded", "file": self.path.name, "sha256": self._sha256[:16], "format": self.format,
                "name": self.name}

    def keys(self) -> list[tuple[str, ...]]:
        """The match keys the file holds (e.g. ``(question_id, model, turn)`` for judgments)."""
        return list(self._index)

    def lookup(self, request: Request) -> Response:
        """The recorded answer to one request, or a ``not_recorded`` failure."""
        if self.format == "outputs":
            key: tuple[str, ...] = (_prompt_text(request).strip(),)
            what = "prompt " + repr(key[0][:60])
        else:
            tags = request_tags(request)
            missing = [t for t in _KEY_TAGS[self.format] if t not in tags]
            if missing:
                return Response.failure(
                    f"recorded {self.format} are matched by {', '.join(_KEY_TAGS[self.format])}; "
                    f"the request carries no {', '.join(missing)}",
                    NOT_RECORDED,
                )
            key = tuple(tags[t] for t in _KEY_TAGS[self.format])
            what = ", ".join(f"{t}={v}" for t, v in zip(_KEY_TAGS[self.format], key, strict=True))
        text = self._index.get(key)
        if text is None:
            return Response.failure(f"nothing recorded for {what} in {self.path.name}", NOT_RECORDED)
        return Response(text=text, finish_reason="recorded")

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        for index, _ in enumerate(requests):
            yield index, Response.failure("recorded outputs hold no log-likelihoods", NOT_RECORDED)

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            yield index, self.lookup(request)

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            yield index, self.lookup(request)


def _prompt_text(request: Request) -> str:
    if isinstance(request, GenerateRequest):
        return request.prompt
    if isinstance(request, ChatRequest):
        users = [m.content for m in request.messages if m.role == "user"]
        return users[-1] if users else ""
    return ""
