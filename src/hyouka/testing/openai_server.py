"""A local OpenAI-compatible server backed by any hyouka model, for tests and benchmarks.

It speaks the real protocol over real HTTP (``/v1/models``, ``/v1/completions``
with ``echo`` + ``logprobs`` the way vLLM answers them, ``/v1/chat/completions``,
``/v1/embeddings`` (deterministic vectors, see :func:`hashed_embedding`),
``usage``, ``"stream": true`` as server-sent events), so the ``openai:`` backend
is tested along the path it takes in production. Test knobs: a fixed response
delay, a delay between streamed chunks, fault injection, request counters, and a
mode that imitates hosted OpenAI (no prompt log-probabilities)::

    stats = ServerStats()
    with serve_openai(EchoModel(), delay_s=0.2, fail=fail_first(1, status=429), stats=stats) as url:
        model = OpenAIModel("echo", base_url=url)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import math
import socket
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.responses import Response as PlainResponse
from starlette.concurrency import run_in_threadpool

from hyouka.models.base import (
    Capabilities,
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    Model,
    Response,
    collect,
)
from hyouka.testing.prompt_scoring import (
    NoPromptLogprobs,
    completion_logprobs,
    next_token,
    score_ids,
    served_tokenizer,
)

LogprobsMode = Literal["echo", "omit", "reject"]
ErrorStyle = Literal["openai", "databricks"]
HOSTED_ECHO_ERROR = "Setting 'echo' and 'logprobs' at the same time is not supported for this model."


# --------------------------------------------------------------------------- faults and counters


@dataclass(frozen=True)
class RequestInfo:
    """What a fault rule sees of one incoming request."""

    path: str  # "completions", "chat/completions" or "embeddings"
    prompt: str  # the prompt, or the chat messages' contents joined by newlines
    attempt: int  # 1 for the first time this (path, prompt) arrives, 2 for its first retry...
    number: int  # 1-based arrival order over all requests


@dataclass(frozen=True)
class Fault:
    """How to answer instead of normally: wait ``delay_s``, then an error (or, with ``status=None``, the
    normal answer). With ``body``, answer that raw body instead, as ``content_type``, with ``status``
    (``None`` meaning 200): the garbage that proxies and broken servers send with a 200."""

    status: int | None = 500
    retry_after: float | None = None
    delay_s: float = 0.0
    message: str = "injected failure"
    body: str | None = None
    content_type: str = "application/json"


# 200 bodies that are not what the route promises, as seen behind proxies and crashing servers
GARBAGE_BODIES: dict[str, tuple[str, str]] = {
    "truncated_json": ('{"id": "cmpl-1", "object": "text_completion", "created": 0, "choices": [{"index": 0, '
                       '"text": "unterminated', "application/json"),
    "html": ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
             "<body><h1>Bad Gateway</h1></body></html>", "text/html; charset=utf-8"),
    "no_choices": ('{"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "echo", "choices": []}',
                   "application/json"),
    "truncated_stream": ('data: {"id": "cmpl-1", "object": "text_completion", "created": 0, "choices": [{"ind\n\n',
                         "text/event-stream"),
}


def garbage(kind: str, *, when: Callable[[RequestInfo], bool] = lambda info: True) -> FaultRule:
    """Answer requests for which ``when`` holds with the 200 garbage body :data:`GARBAGE_BODIES` ``[kind]``."""
    body, content_type = GARBAGE_BODIES[kind]

    def rule(info: RequestInfo) -> Fault | None:
        return Fault(status=None, body=body, content_type=content_type) if when(info) else None

    return rule


FaultRule = Callable[[RequestInfo], Fault | None]


def fail_first(n: int, *, status: int = 429, retry_after: float | None = 0.05) -> FaultRule:
    """Fail the first ``n`` attempts of every prompt, then answer normally."""

    def rule(info: RequestInfo) -> Fault | None:
        return Fault(status, retry_after, message="rate limited") if info.attempt <= n else None

    return rule


def fail_matching(text: str, *, status: int = 500) -> FaultRule:
    """Always fail requests whose prompt contains ``text``."""

    def rule(info: RequestInfo) -> Fault | None:
        return Fault(status) if text in info.prompt else None

    return rule


@dataclass
class ServerStats:
    """Thread-safe counts of what the server received and answered."""

    requests: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    targets: Counter[str] = field(default_factory=Counter)  # "/serving-endpoints/chat/completions", with any query
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def seen(self, target: str) -> None:
        with self._lock:
            self.targets[target] += 1

    def arrive(self, path: str, prompt: str) -> RequestInfo:
        with self._lock:
            self.requests += 1
            self.by_path[path] += 1
            self.attempts[(path, prompt)] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return RequestInfo(path, prompt, self.attempts[(path, prompt)], self.requests)

    def leave(self, status: int) -> None:
        with self._lock:
            self.in_flight -= 1
            self.by_status[status] += 1


# --------------------------------------------------------------------------- a model that needs no weights


def char_logprob(ch: str) -> float:
    """Deterministic log-probability of one character: the toy language model behind ``EchoModel``."""
    return -1.0 - (ord(ch) % 5) * 0.25 if ch else 0.0


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; say whether it was cut."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class EchoModel:
    """A weightless model: answers ``reply`` (or echoes the prompt / last user message).

    Characters stand for tokens, so ``max_tokens`` cuts the answer after that
    many characters; log-likelihoods come from :func:`char_logprob` (the most likely
    character has -1.0; served, a BOS goes in front, see ``prompt_scoring.CharTokenizer``).
    """

    capabilities = Capabilities(loglikelihood=True, generate=True, chat=True)

    def __init__(self, reply: str | None = None, name: str = "echo") -> None:
        self.reply = reply
        self.name = name

    def identity(self) -> dict[str, Any]:
        return {"backend": "echo", "model": self.name, "reply": self.reply}

    def _answer(self, text: str, params: GenerationParams) -> Response:
        out = self.reply if self.reply is not None else text
        out, stopped = apply_stop(out, params.stop)
        finish = "stop" if stopped or len(out) <= params.max_tokens else "length"
        out = out[: params.max_tokens]
        return Response(text=out, prompt_tokens=len(text), completion_tokens=len(out), finish_reason=finish)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        for i, r in enumerate(requests):
            lps = [char_logprob(ch) for ch in r.continuation]
            yield i, Response(logprob=sum(lps), is_greedy=all(lp == -1.0 for lp in lps))

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        for i, r in enumerate(requests):
            yield i, self._answer(r.prompt, r.params)

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        for i, r in enumerate(requests):
            last = next((m.content for m in reversed(r.messages) if m.role == "user"), "")
            yield i, self._answer(last, r.params)


# --------------------------------------------------------------------------- the app


class _ApiError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class _VLLMValidationError(_ApiError):
    """A request vLLM refuses as invalid: HTTP 400, its ``BadRequestError`` body and message suffix."""

    def __init__(self, message: str, parameter: str, value: int) -> None:
        super().__init__(400, f"{message} (parameter={parameter}, value={value})")
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": "BadRequestError", "param": self.parameter, "code": 400}}


def check_context(body: dict[str, Any], n_prompt: int, max_model_len: int) -> None:
    """Refuse or clamp a request as vLLM 0.32 does for a model served with ``--max-model-len``.

    A completion budget above the context, or a prompt longer than it, is an HTTP 400 with vLLM's
    words (``vllm/renderers/params.py``; checked against a running vLLM 0.32 server); a budget that
    only overflows with the prompt is cut to what is left (``get_max_tokens`` in
    ``vllm/entrypoints/serve/utils/api_utils.py``).
    """
    param = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    budget = body.get(param)
    if budget is not None and int(budget) > max_model_len:
        raise _VLLMValidationError(f"{param}={int(budget)} cannot be greater than max_model_len={max_model_len}. "
                                   "Please request fewer output tokens.", param, int(budget))
    if n_prompt > max_model_len:
        # vLLM tokenizes a text prompt truncated to one token past the limit, so it never tells the full length
        counted = max_model_len + 1
        raise _VLLMValidationError(
            f"This model's maximum context length is {max_model_len} tokens. However, your prompt contains "
            f"at least {counted} input tokens, which exceeds this limit even without any output tokens. "
            "Please reduce the length of the input prompt.", "input_tokens", counted)
    if budget is not None:
        body[param] = min(int(budget), max_model_len - n_prompt)


def _error_body(status: int, message: str, style: ErrorStyle = "openai") -> dict[str, Any]:
    if style == "databricks":  # Databricks REST errors: {"error_code": "...", "message": "..."}
        code = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST",
                429: "REQUEST_LIMIT_EXCEEDED"}.get(status, "INTERNAL_ERROR")
        return {"error_code": code, "message": message}
    kind = {400: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


@dataclass(frozen=True)
class Route:
    """Where the API lives and how it authenticates, to mimic a hosted service.

    ``prefix`` is the path before ``/completions`` (``/v1`` as vLLM and OpenAI;
    ``/serving-endpoints`` as Databricks). With ``deployments`` the model is named in the
    path as Azure OpenAI does (``{prefix}/deployments/<name>/chat/completions``) and an
    ``api-version`` query parameter is required. ``auth`` is ``(header, value)`` every POST
    must carry (e.g. ``("authorization", "Bearer dapi-x")`` or ``("api-key", "k")``);
    others get 401. ``errors`` picks the error-body shape.
    """

    prefix: str = "/v1"
    deployments: bool = False
    auth: tuple[str, str] | None = None
    errors: ErrorStyle = "openai"

    @classmethod
    def databricks(cls, token: str) -> Route:
        return cls("/serving-endpoints", auth=("authorization", f"Bearer {token}"), errors="databricks")

    @classmethod
    def azure(cls, *, key: str | None = None, bearer: str | None = None) -> Route:
        auth = ("api-key", key) if key is not None else ("authorization", f"Bearer {bearer}")
        return cls("/openai", deployments=True, auth=auth)


def _refusal(route: Route, request: Request) -> _ApiError | None:
    """Why this request is refused before it reaches the model (auth, api-version), if it is."""
    if route.auth is not None:
        header, value = route.auth
        if request.headers.get(header) != value:
            if route.errors == "databricks":
                return _ApiError(401, "Invalid access token.")
            return _ApiError(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                                  "to provide a valid key for an active subscription and use a correct regional API "
                                  "endpoint for your resource.")
    if route.deployments and not request.query_params.get("api-version"):
        return _ApiError(404, "Resource not found")
    return None


def _params(body: dict[str, Any]) -> GenerationParams:
    def pick(*names: str, default: Any) -> Any:
        return next((body[n] for n in names if body.get(n) is not None), default)

    stop = body.get("stop") or ()
    return GenerationParams(
        max_tokens=int(pick("max_tokens", "max_completion_tokens", default=16)),
        temperature=float(pick("temperature", default=1.0)),
        top_p=float(pick("top_p", default=1.0)),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        seed=body.get("seed"),
        response_format=json.dumps(body["response_format"]) if body.get("response_format") else None,
    )


EMBEDDING_DIMENSIONS = 512


def hashed_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector for ``text``: its character unigrams and bigrams (after NFKC,
    lower-cased, spaces dropped), each hashed to a signed coordinate, with sublinear counts.

    Texts sharing characters and character pairs point the same way, so retrieval over these
    vectors is meaningful (a bag of character n-grams), as with a real embedding model, only weaker.
    """
    chars = [c for c in unicodedata.normalize("NFKC", text).lower() if not c.isspace()]
    grams = chars + [a + b for a, b in itertools.pairwise(chars)]
    counts: Counter[int] = Counter()
    for gram in grams:
        digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        counts[slot if digest[4] & 1 else -slot - 1] += 1
    vector = [0.0] * dimensions
    for key, n in counts.items():
        vector[key if key >= 0 else -key - 1] += (1.0 + math.log(n)) * (1.0 if key >= 0 else -1.0)
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _embedding_inputs(body: dict[str, Any], tokenizer: Any) -> list[str]:
    """The texts of an ``/embeddings`` body: a string, a list of strings, token ids or a list of them."""
    raw = body.get("input")
    inputs = _prompt_list(raw)
    if inputs is None or (isinstance(raw, list) and not raw):
        raise _ApiError(400, "'input' must be a non-empty string, array of strings, or array of token arrays")
    return [p if isinstance(p, str) else tokenizer.decode(p) if tokenizer else " ".join(map(str, p)) for p in inputs]


class _Handler:
    """Turns OpenAI request bodies into backend calls and backend responses into OpenAI bodies."""

    def __init__(
        self, backend: Model, *, model_name: str, logprobs_mode: LogprobsMode, logprob_token_ids: bool = True
    ) -> None:
        self.backend = backend
        self.model_name = model_name
        self.logprobs_mode = logprobs_mode
        self.tokenizer = served_tokenizer(backend)
        self.logprob_token_ids = logprob_token_ids
        self.max_model_len = int(getattr(backend, "max_length", None) or 2048)
        self._lock = threading.Lock()  # backends are not assumed thread-safe

    def _call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            return fn()

    def _one(self, method: Callable[[Any], Iterator[tuple[int, Response]]], request: Any) -> Response:
        response = collect(method([request]), 1)[0]
        if not response.ok:
            raise _ApiError(500, f"backend failed: {response.error}")
        return response

    def _count(self, text: str) -> int:
        tok = getattr(self.backend, "tokenizer", None)
        return len(tok(text, add_special_tokens=False)["input_ids"]) if tok is not None else len(text)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = _prompt_list(body.get("prompt"))
        if prompts is None:
            raise _ApiError(400, "prompt must be a string, a list of strings, or token ids")
        params = _params(body)
        echo, top_n = bool(body.get("echo")), body.get("logprobs")
        if echo and top_n is not None and self.logprobs_mode == "reject":
            raise _ApiError(400, HOSTED_ECHO_ERROR)
        if self.logprobs_mode != "echo":
            top_n = None
        options = {
            "return_ids": bool(body.get("return_token_ids")),
            "as_ids": bool(body.get("return_tokens_as_token_ids")),
            "extra": [int(t) for t in body.get("logprob_token_ids") or []]
            if self.logprob_token_ids and self.logprobs_mode == "echo"
            else [],
        }
        choices, n_prompt, n_completion = [], 0, 0
        for index, prompt in enumerate(prompts):
            choice, p_tok, c_tok = self._call(lambda p=prompt: self._complete(p, params, echo, top_n, **options))
            choices.append({"index": index, **choice})
            n_prompt, n_completion = n_prompt + p_tok, n_completion + c_tok
        return self._envelope("text_completion", choices, n_prompt, n_completion)

    def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        """vLLM's ``POST /tokenize``: ``{prompt, add_special_tokens}`` -> ``{count, max_model_len, tokens}``."""
        if self.tokenizer is None:
            raise _ApiError(404, "this server does not tokenize")
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise _ApiError(400, "prompt must be a string")
        ids = list(self.tokenizer(prompt, add_special_tokens=bool(body.get("add_special_tokens", True)))["input_ids"])
        return {"count": len(ids), "max_model_len": self.max_model_len, "tokens": ids, "token_strs": None}

    def _prompt_ids(self, prompt: str | list[int]) -> tuple[list[int] | None, str]:
        """A prompt's token ids (a text prompt gets the special tokens, as vLLM encodes it) and its text."""
        if isinstance(prompt, str):
            ids = None if self.tokenizer is None else list(self.tokenizer(prompt)["input_ids"])
            return ids, prompt
        if self.tokenizer is None:
            raise _ApiError(400, "this server takes text prompts only")
        return list(prompt), self.tokenizer.decode(list(prompt), skip_special_tokens=True)

    def _complete(
        self,
        prompt: str | list[int],
        params: GenerationParams,
        echo: bool,
        top_n: int | None,
        *,
        return_ids: bool = False,
        as_ids: bool = False,
        extra: Sequence[int] = (),
    ) -> tuple[dict[str, Any], int, int]:
        ids, text_prompt = self._prompt_ids(prompt)
        if params.max_tokens > 0:
            r = self._one(self.backend.generate, GenerateRequest(text_prompt, params))
            text, finish = apply_stop(r.text or "", params.stop)
            finish_reason = "stop" if finish else (r.finish_reason or "stop")
        else:
            r, text, finish_reason = Response(), "", "length"
        new_ids = [] if self.tokenizer is None else list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        shown = self.tokenizer.decode(ids) if ids is not None and isinstance(prompt, list) else text_prompt
        choice: dict[str, Any] = {"text": shown + text if echo else text, "logprobs": None}
        if top_n is not None:
            if ids is None:
                raise _ApiError(400, f"backend {type(self.backend).__name__} cannot score prompt tokens")
            try:
                first = None
                if params.max_tokens > 0:  # the first generated position: the greedy token and logprob_token_ids
                    first = next_token(self.backend, self.tokenizer, ids, int(top_n), extra)
                    new_ids = new_ids or [first.token_id]  # a model that answered nothing still took a step
                scored = score_ids(self.backend, self.tokenizer, ids + new_ids, int(top_n))
                if first is not None:
                    scored[len(ids)] = first
            except NoPromptLogprobs as exc:
                raise _ApiError(400, str(exc)) from exc
            logprobs, prompt_logprobs = completion_logprobs(
                self.tokenizer, scored, int(top_n), first=0 if echo else len(ids), as_ids=as_ids
            )
            choice["logprobs"] = logprobs
            if echo:
                choice["prompt_logprobs"] = prompt_logprobs[: len(ids)]
        choice["finish_reason"] = finish_reason
        choice["stop_reason"] = None
        choice["token_ids"] = new_ids if return_ids else None
        choice["prompt_token_ids"] = ids if return_ids else None
        n_prompt = r.prompt_tokens if r.prompt_tokens is not None else len(ids) if ids else self._count(text_prompt)
        n_completion = r.completion_tokens if r.completion_tokens is not None else self._count(text)
        return choice, n_prompt, n_completion

    def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """``/v1/embeddings`` in OpenAI's shape: ``float`` lists, or ``base64`` float32 (the client's default)."""
        texts = _embedding_inputs(body, self.tokenizer)
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        if not isinstance(dimensions, int) or dimensions < 1:
            raise _ApiError(400, f"'dimensions' must be a positive integer, got {dimensions!r}")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise _ApiError(400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}")
        data = []
        for i, text in enumerate(texts):
            vector = hashed_embedding(text, dimensions)
            if encoding == "base64":
                import numpy as np

                value: Any = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
            else:
                value = vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        n_prompt = sum(self._count(t) for t in texts)
        return {"object": "list", "data": data, "model": body.get("model"),
                "usage": {"prompt_tokens": n_prompt, "total_tokens": n_prompt}}

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            messages = tuple(Message(m["role"], m.get("content") or "") for m in body["messages"])
        except (KeyError, TypeError) as exc:
            raise _ApiError(400, "messages must be a list of {role, content}") from exc
        params = _params(body)
        if self.backend.capabilities.chat:
            r = self._call(lambda: self._one(self.backend.chat, ChatRequest(messages, params)))
        else:  # a plain template over generate, enough for a test double
            prompt = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant: "
            r = self._call(lambda: self._one(self.backend.generate, GenerateRequest(prompt, params)))
        text, stopped = apply_stop(r.text or "", params.stop)
        finish = "stop" if stopped else (r.finish_reason or "stop")
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        n_prompt = r.prompt_tokens if r.prompt_tokens is not None else self._count("".join(m.content for m in messages))
        n_completion = r.completion_tokens if r.completion_tokens is not None else self._count(text)
        return self._envelope("chat.completion", [choice], n_prompt, n_completion)

    def _envelope(self, obj: str, choices: list[dict[str, Any]], n_prompt: int, n_completion: int) -> dict:
        return {
            "id": f"hyouka-{uuid.uuid4().hex[:16]}",
            "object": obj,
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": n_completion,
                "total_tokens": n_prompt + n_completion,
            },
        }


def _prompt_list(prompt: Any) -> list[str | list[int]] | None:
    """The prompts of a ``/completions`` body: a string, a list of strings, token ids or a list of them."""
    if isinstance(prompt, str):
        return [prompt]
    if not isinstance(prompt, list) or not prompt:
        return None
    if all(type(t) is int for t in prompt):
        return [prompt]
    if all(isinstance(p, str) or (isinstance(p, list) and p and all(type(t) is int for t in p)) for p in prompt):
        return list(prompt)
    return None


def _prompt_of(path: str, body: dict[str, Any], tokenizer: Any = None) -> str:
    """What fault rules and counters see of a request: its prompt text (token ids decoded)."""
    if path in ("completions", "embeddings"):
        prompts = _prompt_list(body.get("prompt" if path == "completions" else "input")) or []
        return "\n".join(
            p if isinstance(p, str) else tokenizer.decode(p, skip_special_tokens=True) if tokenizer else str(p)
            for p in prompts
        )
    return "\n".join(str(m.get("content") or "") for m in body.get("messages") or [] if isinstance(m, dict))


def _pieces(text: str) -> list[str]:
    """How a streamed answer is cut into chunks: one character each (characters stand for tokens)."""
    return list(text)


def stream_chunks(payload: dict[str, Any], *, include_usage: bool) -> list[tuple[dict[str, Any], bool]]:
    """A finished (non-streamed) answer as OpenAI stream chunks, each with whether a chunk delay precedes it.

    Chat chunks carry ``choices[0].delta`` (the role on the first), completion chunks ``choices[i].text``;
    each choice ends with a chunk holding its ``finish_reason``. With ``include_usage`` every chunk has
    ``usage: null`` and a last chunk with no choices carries the usage. Log-probabilities are not streamed.
    """
    chat = payload["object"] == "chat.completion"
    head = {"id": payload["id"], "object": "chat.completion.chunk" if chat else "text_completion",
            "created": payload["created"], "model": payload["model"]}
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "delta": delta} if chat else {"index": index, **delta}
        return {**head, "choices": [{**choice, "logprobs": None, "finish_reason": finish}], **extra}

    out: list[tuple[dict[str, Any], bool]] = []
    for choice in payload["choices"]:
        index = choice["index"]
        text = choice["message"]["content"] if chat else choice["text"]
        for n, piece in enumerate(_pieces(text) or [""]):
            delta = {"content": piece} if chat else {"text": piece}
            if chat and n == 0:
                delta = {"role": "assistant", **delta}
            out.append((chunk(index, delta, None), n > 0))
        out.append((chunk(index, {} if chat else {"text": ""}, choice["finish_reason"]), bool(text)))
    if include_usage:
        out.append(({**head, "choices": [], "usage": payload["usage"]}, False))
    return out


def create_app(
    backend: Model,
    *,
    model_name: str | None = None,
    delay_s: float = 0.0,
    chunk_delay_s: float = 0.0,
    fail: FaultRule | None = None,
    logprobs_mode: LogprobsMode = "echo",
    endpoints: Sequence[str] = ("completions", "chat/completions", "tokenize", "embeddings"),
    ignore_stop: bool = False,
    stats: ServerStats | None = None,
    logprob_token_ids: bool = True,
    route: Route | None = None,
    max_model_len: int | None = None,
) -> Any:
    """The FastAPI app; see :func:`serve_openai` for the options."""
    route = route or Route()
    name = model_name or backend.name
    handler = _Handler(backend, model_name=name, logprobs_mode=logprobs_mode, logprob_token_ids=logprob_token_ids)
    if max_model_len is not None:
        handler.max_model_len = max_model_len  # what /tokenize reports
    counts = stats if stats is not None else ServerStats()
    inline = isinstance(backend, EchoModel)  # cheap enough to answer on the event loop
    app = FastAPI(title="hyouka local OpenAI-compatible server")

    @app.get(f"{route.prefix}/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "hyouka"}]}

    async def events(chunks: list[tuple[dict[str, Any], bool]]) -> AsyncIterator[str]:
        try:
            for chunk, pause in chunks:
                if pause and chunk_delay_s:
                    await asyncio.sleep(chunk_delay_s)
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            counts.leave(200)

    async def serve(
        path: str, request: Request, deployment: str | None = None
    ) -> JSONResponse | StreamingResponse | PlainResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        counts.seen(target)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse(_error_body(400, "body must be a JSON object", route.errors), status_code=400)
        if ignore_stop:
            body.pop("stop", None)
        info = counts.arrive(path, _prompt_of(path, body, handler.tokenizer))
        status: int | None = 200
        try:
            refused = _refusal(route, request)
            if refused is not None:
                raise refused
            if path not in endpoints:
                raise _ApiError(404, f"this server does not offer {route.prefix}/{path}")
            asked = deployment if route.deployments else body.get("model")
            if asked != name and path != "embeddings":  # any embedding model name: the vectors are the server's
                raise _ApiError(404, f"Endpoint with name '{asked}' does not exist." if route.errors == "databricks"
                                else f"The model `{asked}` does not exist.")
            fault = fail(info) if fail is not None else None
            if delay_s or (fault and fault.delay_s):
                await asyncio.sleep(delay_s + (fault.delay_s if fault else 0.0))
            if fault is not None and fault.body is not None:
                status = fault.status or 200
                return PlainResponse(fault.body, status_code=status, media_type=fault.content_type)
            if fault is not None and fault.status is not None:
                raise _ApiError(fault.status, fault.message, fault.retry_after)
            if max_model_len is not None and path != "embeddings":
                check_context(body, handler._count(_prompt_of(path, body)), max_model_len)
            work = {"completions": handler.completion, "embeddings": handler.embeddings}.get(path, handler.chat)
            payload = work(body) if inline else await run_in_threadpool(work, body)
            if not body.get("stream"):
                return JSONResponse(payload)
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            status = None  # the stream counts itself out when it ends
            return StreamingResponse(
                events(stream_chunks(payload, include_usage=usage)),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        except _ApiError as exc:
            status = exc.status
            headers = {"retry-after": f"{exc.retry_after:g}"} if exc.retry_after is not None else None
            if isinstance(exc, _VLLMValidationError):
                error = exc.body()
            else:
                error = _error_body(exc.status, exc.message, route.errors)
            return JSONResponse(error, status_code=exc.status, headers=headers)
        finally:
            if status is not None:
                counts.leave(status)

    if route.deployments:

        @app.post(f"{route.prefix}/deployments/{{deployment}}/completions", response_model=None)
        async def deployment_completions(deployment: str, request: Request) -> JSONResponse | StreamingResponse:
            return await serve("completions", request, deployment)

        @app.post(f"{route.prefix}/deployments/{{deployment}}/chat/completions", response_model=None)
        async def deployment_chat(deployment: str, request: Request) -> JSONResponse | StreamingResponse:
            return await serve("chat/completions", request, deployment)

        return app

    @app.post(f"{route.prefix}/completions", response_model=None)
    async def completions(request: Request) -> JSONResponse | StreamingResponse:
        return await serve("completions", request)

    @app.post(f"{route.prefix}/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
        return await serve("chat/completions", request)

    @app.post(f"{route.prefix}/embeddings", response_model=None)
    async def embeddings(request: Request) -> JSONResponse | StreamingResponse:
        return await serve("embeddings", request)

    @app.post("/tokenize", response_model=None)
    async def tokenize(request: Request) -> JSONResponse:
        """vLLM's route beside ``/v1``; hosted OpenAI (``logprobs_mode="reject"``) has none. No faults, no counts."""
        try:
            if "tokenize" not in endpoints or logprobs_mode == "reject":
                raise _ApiError(404, "Not Found")
            body = await request.json()
            if not isinstance(body, dict):
                raise _ApiError(400, "body must be a JSON object")
            return JSONResponse(await run_in_threadpool(handler.tokenize, body))
        except _ApiError as exc:
            return JSONResponse(_error_body(exc.status, exc.message), status_code=exc.status)
        except ValueError:
            return JSONResponse(_error_body(400, "body must be JSON"), status_code=400)

    return app


# --------------------------------------------------------------------------- running it


class OpenAIServer:
    """Runs :func:`create_app` under uvicorn in a daemon thread on 127.0.0.1 and a free port."""

    def __init__(self, backend: Model, **options: Any) -> None:
        self.stats: ServerStats = options.pop("stats", None) or ServerStats()
        self.route: Route = options.get("route") or Route()
        self._app = create_app(backend, stats=self.stats, **options)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit this; without it small writes wait ~40 ms on delayed ACKs
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_level="warning", access_log=False, backlog=2048, timeout_keep_alive=30, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="hyouka-openai-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("local OpenAI-compatible server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}{self.route.prefix}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> OpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_openai(
    backend: Model | None = None,
    *,
    model_name: str | None = None,
    delay_s: float = 0.0,
    chunk_delay_s: float = 0.0,
    fail: FaultRule | None = None,
    logprobs_mode: LogprobsMode = "echo",
    endpoints: Sequence[str] = ("completions", "chat/completions", "tokenize", "embeddings"),
    ignore_stop: bool = False,
    stats: ServerStats | None = None,
    logprob_token_ids: bool = True,
    route: Route | None = None,
    max_model_len: int | None = None,
) -> Iterator[str]:
    """Serve ``backend`` (default: an :class:`EchoModel`) and yield the base URL ``http://127.0.0.1:PORT/v1``.

    ``delay_s`` holds every POST answer that long (an async sleep, so requests
    overlap; for ``"stream": true`` it is the wait before the first chunk);
    ``chunk_delay_s`` is the wait between streamed chunks (one per character);
    ``fail`` decides per request whether to answer with an error instead (see
    :func:`fail_first`, :func:`fail_matching`); ``logprobs_mode``
    ``"omit"`` answers ``echo`` + ``logprobs`` without log-probabilities and
    ``"reject"`` refuses them with hosted OpenAI's 400; ``endpoints`` limits the
    POST routes offered; ``ignore_stop`` drops stop strings like some servers
    do; pass ``stats`` to read the request counts; ``max_model_len`` refuses over-long
    requests as vLLM does with ``--max-model-len`` (see :func:`check_context`); ``logprob_token_ids=False``
    ignores that vLLM field (``return_tokens_as_token_ids`` still applies), as servers other than vLLM do;
    ``route`` mimics a hosted service's paths, auth header and error bodies (:meth:`Route.databricks`,
    :meth:`Route.azure`); the URL yielded then ends in the route's prefix instead of ``/v1``.
    """
    server = OpenAIServer(
        backend if backend is not None else EchoModel(),
        model_name=model_name,
        delay_s=delay_s,
        chunk_delay_s=chunk_delay_s,
        fail=fail,
        logprobs_mode=logprobs_mode,
        endpoints=tuple(endpoints),
        ignore_stop=ignore_stop,
        stats=stats,
        logprob_token_ids=logprob_token_ids,
        route=route,
        max_model_len=max_model_len,
    )
    with server:
        yield server.url
