"""Run a JSON file of requests through one model spec and write the responses: for comparing backends
that live in different Python environments (``vllm:`` in its own venv against ``hf:``).

    python -m hyouka.testing.run_requests vllm:/path/to/model requests.json out.json \\
        --option dtype=float32 --option kv_cache_memory_bytes=536870912

``requests.json`` holds ``{"requests": [request_payload(...), ...]}`` (see
:func:`hyouka.models.base.request_payload`); ``out.json`` gets the responses in the same order,
the model's identity, the wall seconds spent answering (engine start-up excluded where the
backend has ``load()``) and the backend's ``stats`` if it keeps any.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from hyouka.models.base import (
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    Request,
    collect,
    dispatch,
    request_payload,
)


def request_from_payload(payload: dict[str, Any]) -> Request:
    """The inverse of :func:`hyouka.models.base.request_payload`."""
    kind = payload["kind"]
    if kind == "loglikelihood":
        return LoglikelihoodRequest(payload["context"], payload["continuation"])
    raw = dict(payload.get("params") or {})
    raw["stop"] = tuple(raw.get("stop") or ())
    params = GenerationParams(**raw)
    if kind == "generate":
        return GenerateRequest(payload["prompt"], params)
    messages = tuple(Message(m["role"], m["content"]) for m in payload["messages"])
    return ChatRequest(messages, params, tuple(tuple(t) for t in payload.get("tags") or ()))


def write_requests(path: Path, requests: list[Request]) -> None:
    path.write_text(json.dumps({"requests": [request_payload(r) for r in requests]}, ensure_ascii=False),
                    encoding="utf-8")


def run(spec: str, requests: list[Request], options: dict[str, Any]) -> dict[str, Any]:
    """Answer ``requests`` with the backend ``spec`` names, kind by kind, in request order."""
    from hyouka.models.registry import load_model

    model = load_model(spec, **options)
    identity = model.identity()
    if hasattr(model, "load"):
        model.load()
    out: list[Any] = [None] * len(requests)
    start = time.perf_counter()
    for kind in ("loglikelihood", "generate", "chat"):
        indices = [i for i, r in enumerate(requests) if r.kind == kind]
        if indices:
            responses = collect(dispatch(model, kind, [requests[i] for i in indices]), len(indices))
            for i, response in zip(indices, responses, strict=True):
                out[i] = response.to_dict()
    wall = time.perf_counter() - start
    stats = getattr(model, "stats", None)
    if hasattr(model, "close"):
        model.close()
    return {"identity": identity, "wall_s": wall, "responses": out,
            "stats": asdict(stats) if is_dataclass(stats) and not isinstance(stats, type) else None}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("requests", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--option", action="append", default=[], help="NAME=VALUE (VALUE read as JSON if it parses)")
    args = parser.parse_args(argv)
    options = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option takes NAME=VALUE, got {item!r}")
        options[name] = _value(value)
    payloads = json.loads(args.requests.read_text(encoding="utf-8"))["requests"]
    result = run(args.spec, [request_from_payload(p) for p in payloads], options)
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
