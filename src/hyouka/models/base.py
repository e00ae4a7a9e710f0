"""The small protocol every model backend implements.

A backend receives a batch of requests of one kind and yields ``(index,
Response)`` pairs as results become available, in any order. Yielding early
lets the engine cache and record finished work while the rest is in flight,
so a run killed halfway loses nothing it already paid for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from hyouka.jsonio import canonical_bytes

RequestKind = Literal["loglikelihood", "generate", "chat"]


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Decoding settings shared by ``generate`` and ``chat`` requests.

    ``response_format`` is the JSON text of an OpenAI ``response_format`` object (e.g. a
    JSON schema) for backends with ``structured_output``; others ignore it.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: str | None = None


@dataclass(frozen=True, slots=True)
class LoglikelihoodRequest:
    """Score ``continuation`` given ``context`` (the two are joined as-is)."""

    context: str
    continuation: str
    kind: Literal["loglikelihood"] = "loglikelihood"


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """Complete a raw text prompt.

    ``repeat`` tells apart the samples of one prompt drawn several times (see :func:`repeated`);
    it is part of the cache key only when set.
    """

    prompt: str
    params: GenerationParams = field(default_factory=GenerationParams)
    kind: Literal["generate"] = "generate"
    repeat: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Answer the last user message of a conversation.

    ``tags`` label what a request is about (``question_id``, ``model``, ``turn``…) for
    backends that replay recorded answers; they are part of the cache key only when set, as
    is ``repeat`` (see :func:`repeated`).
    """

    messages: tuple[Message, ...]
    params: GenerationParams = field(default_factory=GenerationParams)
    tags: tuple[tuple[str, str], ...] = ()
    kind: Literal["chat"] = "chat"
    repeat: int | None = None


Request = LoglikelihoodRequest | GenerateRequest | ChatRequest
SampledRequest = GenerateRequest | ChatRequest


def repeated(request: SampledRequest, n: int) -> list[SampledRequest]:
    """``n`` requests for ``n`` samples of one prompt (pass@k, self-consistency, epochs).

    Sampled at a temperature above 0, each is its own request (and cache entry): repeat ``i``
    carries the index ``i`` and, when the request has a seed, the seed ``seed + i``. Repeat 0 is
    the request itself, so a single-sample run and an ``n``-sample run share their first answers.
    Greedy requests give one answer however often they are sent: ``n`` copies of the request,
    which the executor sends once and shares.
    """
    if n < 1:
        raise ValueError(f"a prompt is sampled at least once, not {n} times")
    if request.params.temperature <= 0:
        return [request] * n
    out: list[SampledRequest] = [request]
    for i in range(1, n):
        seed = request.params.seed
        params = request.params if seed is None else replace(request.params, seed=seed + i)
        out.append(replace(request, params=params, repeat=i))
    return out


@dataclass(slots=True)
class Response:
    """What one call returned, plus what it cost.

    ``error`` is set (and the payload fields left empty) when the call failed
    after all retries; the engine records such a sample as failed and goes on.
    ``ttft_s`` (time to the first token) is known only for streamed calls.
    """

    text: str | None = None
    logprob: float | None = None
    is_greedy: bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    error_type: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """All fields, or with ``compact`` only those set (``cached`` only when true)."""
        if compact:
            return self._compact()
        return {name: getattr(self, name) for name in _RESPONSE_FIELDS}

    def _compact(self) -> dict[str, Any]:
        # spelled out: it runs once per stored call, and is three times quicker than a loop over fields
        out: dict[str, Any] = {}
        if self.text is not None:
            out["text"] = self.text
        if self.logprob is not None:
            out["logprob"] = self.logprob
        if self.is_greedy is not None:
            out["is_greedy"] = self.is_greedy
        if self.prompt_tokens is not None:
            out["prompt_tokens"] = self.prompt_tokens
        if self.completion_tokens is not None:
            out["completion_tokens"] = self.completion_tokens
        if self.latency_s is not None:
            out["latency_s"] = self.latency_s
        if self.ttft_s is not None:
            out["ttft_s"] = self.ttft_s
        if self.finish_reason is not None:
            out["finish_reason"] = self.finish_reason
        if self.error is not None:
            out["error"] = self.error
        if self.error_type is not None:
            out["error_type"] = self.error_type
        if self.cached:
            out["cached"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def failure(cls, error: BaseException | str, error_type: str = "api_error") -> Response:
        return cls(error=str(error) or type(error).__name__, error_type=error_type)


_RESPONSE_FIELDS = tuple(Response.__dataclass_fields__)


@dataclass(frozen=True)
class Capabilities:
    """Which request kinds a backend can serve."""

    loglikelihood: bool = False
    generate: bool = False
    chat: bool = False
    structured_output: bool = False

    def supports(self, kind: RequestKind) -> bool:
        return bool(getattr(self, kind))


class UnsupportedRequestError(RuntimeError):
    """A backend was asked for a request kind it cannot serve."""


@runtime_checkable
class Model(Protocol):
    """A language model behind one of the backends."""

    name: str
    capabilities: Capabilities

    def identity(self) -> dict[str, Any]:
        """Everything that changes an answer (never credentials); part of cache keys."""
        ...

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest]
    ) -> Iterator[tuple[int, Response]]: ...

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]: ...

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]: ...


def dispatch(model: Model, kind: RequestKind, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
    """Send a batch of one kind of request to the matching backend method."""
    if not model.capabilities.supports(kind):
        raise UnsupportedRequestError(f"model {model.name!r} does not support {kind} requests")
    method = getattr(model, kind)
    return method(requests)


def collect(pairs: Iterable[tuple[int, Response]], n: int) -> list[Response]:
    """Gather streamed ``(index, Response)`` pairs into a list ordered by index."""
    out: list[Response | None] = [None] * n
    for index, response in pairs:
        out[index] = response
    missing = [i for i, r in enumerate(out) if r is None]
    if missing:
        raise RuntimeError(f"backend returned no response for request indices {missing[:10]}")
    return out  # type: ignore[return-value]


def _params_payload(params: GenerationParams) -> dict[str, Any]:
    payload = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": list(params.stop),
        "seed": params.seed,
    }
    if params.response_format is not None:
        payload["response_format"] = params.response_format
    return payload


def request_payload(request: Request) -> dict[str, Any]:
    """A JSON-ready description of a request (used for cache keys and records)."""
    if isinstance(request, LoglikelihoodRequest):
        return {"kind": request.kind, "context": request.context, "continuation": request.continuation}
    if isinstance(request, GenerateRequest):
        payload = {"kind": request.kind, "prompt": request.prompt, "params": _params_payload(request.params)}
        if request.repeat is not None:
            payload["repeat"] = request.repeat
        return payload
    if isinstance(request, ChatRequest):
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        payload = {"kind": request.kind, "messages": messages, "params": _params_payload(request.params)}
        if request.tags:
            payload["tags"] = [list(tag) for tag in request.tags]
        if request.repeat is not None:
            payload["repeat"] = request.repeat
        return payload
    return asdict(request)


def identity_digest(identity: dict[str, Any]) -> bytes:
    """The model-identity part of every cache key, computed once per model."""
    return hashlib.sha256(canonical_bytes(identity)).digest()


def request_key(identity: dict[str, Any] | bytes, request: Request) -> str:
    """Stable hash of model identity + request: the response-cache key."""
    prefix = identity if isinstance(identity, bytes) else identity_digest(identity)
    return hashlib.sha256(prefix + canonical_bytes(request_payload(request))).hexdigest()


def request_keys(identity: dict[str, Any] | bytes, requests: Sequence[Request]) -> list[str]:
    """:func:`request_key` of each request, hashing a context shared by log-likelihood requests once.

    The canonical JSON of a log-likelihood request starts with its context (keys are sorted:
    ``context``, ``continuation``, ``kind``), so the hash state after the context is copied
    for each continuation: the same keys, without rehashing a long few-shot prompt per choice.
    """
    prefix = identity if isinstance(identity, bytes) else identity_digest(identity)
    after_context: dict[str, Any] = {}  # context -> sha256 state over prefix + '{"context":"..."'
    keys = []
    for request in requests:
        if type(request) is not LoglikelihoodRequest:
            keys.append(request_key(prefix, request))
            continue
        state = after_context.get(request.context)
        if state is None:
            state = after_context[request.context] = hashlib.sha256(
                prefix + b'{"context":' + canonical_bytes(request.context)
            )
        digest = state.copy()
        digest.update(b',"continuation":' + canonical_bytes(request.continuation) + b',"kind":"loglikelihood"}')
        keys.append(digest.hexdigest())
    return keys
