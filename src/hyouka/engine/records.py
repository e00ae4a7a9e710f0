"""Build the per-sample record the store keeps, and the run's aggregates."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from typing import Any

from hyouka.models.base import ChatRequest, GenerateRequest, LoglikelihoodRequest, Request, Response
from hyouka.tasks.task import Scored, Task


def request_summary(request: Request) -> dict[str, Any]:
    """A request without its prompt text (the prompt is stored once per sample)."""
    if isinstance(request, LoglikelihoodRequest):
        return {"kind": request.kind, "continuation": request.continuation}
    if isinstance(request, GenerateRequest):
        out: dict[str, Any] = {"kind": request.kind, "params": _params(request)}
    else:
        assert isinstance(request, ChatRequest)
        out = {
            "kind": request.kind,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "params": _params(request),
        }
    if request.repeat is not None:
        out["repeat"] = request.repeat
    return out


def _params(request: GenerateRequest | ChatRequest) -> dict[str, Any]:
    p = request.params
    return {"max_tokens": p.max_tokens, "temperature": p.temperature, "stop": list(p.stop), "seed": p.seed}


def _totals(responses: Sequence[Response]) -> tuple[float | None, int | None, int | None]:
    """Summed latency, prompt and completion tokens of a sample's calls; ``None`` where no call reported one."""
    latency = prompt = completion = None
    for r in responses:
        if r.latency_s is not None:
            latency = r.latency_s if latency is None else latency + r.latency_s
        if r.prompt_tokens is not None:
            prompt = r.prompt_tokens if prompt is None else prompt + r.prompt_tokens
        if r.completion_tokens is not None:
            completion = r.completion_tokens if completion is None else completion + r.completion_tokens
    return latency, prompt, completion


def sample_record(
    index: int,
    doc: dict[str, Any],
    prompt: str,
    requests: Sequence[Request],
    responses: Sequence[Response],
    scored: Scored,
) -> dict[str, Any]:
    """Everything the store keeps for one sample; `hyouka score` recomputes from it alone."""
    generated = [r.text for r in responses if r.text is not None]
    latency, prompt_tokens, completion_tokens = _totals(responses)
    return {
        "sample_index": index,
        "doc_id": str(doc.get("_id", index)),
        "doc": doc,
        "prompt": prompt,
        "requests": [request_summary(r) for r in requests],
        "responses": [r.to_dict(compact=True) for r in responses],
        "output": generated[0] if len(generated) == 1 else None,
        "extracted": scored.extracted,
        "prediction": scored.prediction,
        "reference": scored.reference,
        "metrics": scored.metrics,
        "details": scored.details,
        "status": scored.status,
        "error": scored.error,
        "latency_s": latency,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }


def compute_aggregates(
    task: Task, mode: str, samples: Sequence[dict[str, Any]], n_total: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Corpus metrics over a run's samples; samples whose call failed are not scored but counted."""
    from hyouka.metrics.registry import aggregate

    scored = [s for s in samples if s["status"] in ("ok", "format_error", "parse_error")]
    predictions = [s["prediction"] for s in scored]
    references = [s["reference"] for s in scored]
    labels = None
    if task.spec.output_type == "multiple_choice":
        labels = list(range(len(task.spec.doc_to_choice or [])))
    out = []
    for name in task.spec.metrics_for(mode):  # type: ignore[arg-type]
        agg = aggregate(name, predictions, references, n_total=n_total, labels=labels, seed=seed)
        out.append(agg.to_dict())
    return out


def config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def package_versions() -> dict[str, str]:
    """Versions that can change a result, recorded with every run."""
    return dict(_installed_versions())


@cache
def _installed_versions() -> dict[str, str]:
    # reading package metadata costs milliseconds, and installed versions do not change under a process
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("hyouka", "torch", "transformers", "tokenizers", "openai", "fugashi", "unidic-lite", "numpy",
                 "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
