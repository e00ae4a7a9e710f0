"""The ``openai:`` backend: any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp...).

Requests go out through the official ``openai`` client from a pool of
``concurrency`` threads, never more in flight, and stream back in completion
order. Failed attempts are retried here (the client's own retries are off)
with jittered exponential backoff that honours ``Retry-After``; a request
that still fails becomes a failed :class:`Response` and the run goes on.
Log-likelihoods need prompt log-probabilities (``echo`` + ``logprobs`` on
``/completions``, as vLLM offers them); endpoints without them are detected
on the first request. With ``stream=True`` generations arrive as server-sent
events, which also measures the time to the first token (``Response.ttft_s``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from hyouka.models.base import (
    Capabilities,
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Response,
    UnsupportedRequestError,
)
from hyouka.models.openai_logprobs import PromptLogprobsUnavailableError, continuation_logprob
from hyouka.models.openai_retry import Failure, MalformedResponseError, backoff, classify

ApiKind = Literal["auto", "chat", "completions"]
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "EMPTY"
FATAL_STATUSES = frozenset({401, 403, 404})
log = logging.getLogger(__name__)

__all__ = ["OpenAIEndpointError", "OpenAIModel", "OpenAIStats", "PromptLogprobsUnavailableError"]


class OpenAIEndpointError(RuntimeError):
    """The endpoint refuses every request (bad key, unknown model or route): stop instead of retrying."""


_SECRET_HINTS = ("key", "token", "secret", "password", "sig")


def split_base_url(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its query, and the query's parameters, which then go with every request.

    The client appends routes (``/completions``) to the base URL, so a query left on it
    would swallow the route. A URL with a user name or password is refused: the HTTP
    library would send them as Basic auth in place of the API key.
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"--base-url {public_url(url)} carries a user name or password (user:pass@): the client would send "
            "them as Basic auth instead of the API key. Drop them from the URL and put the key in the environment "
            "variable named by --api-key-env (default OPENAI_API_KEY)"
        )
    if parts.fragment:
        raise ValueError(f"--base-url {public_url(url)} has a #fragment, which no server receives; drop it")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/"), query


@dataclass
class OpenAIStats:
    """HTTP attempts made, retries among them, and requests that failed for good."""

    attempts: int = 0
    retries: int = 0
    failures: int = 0


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to log and to hash."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class OpenAIModel:
    """A model behind an OpenAI-compatible HTTP API.

    ``api`` picks the route for ``generate``: ``"completions"``, ``"chat"``
    (the prompt sent as one user message), or ``"auto"`` (completions, falling
    back to chat when the server offers only chat). The key is read from the
    environment variable ``api_key_env``; a custom ``base_url`` works without one.
    ``structured_output`` says the server honours ``response_format`` JSON schemas
    (OpenAI, vLLM, Ollama do); turn it off for servers that reject the field.
    ``stream`` streams ``generate`` and ``chat`` answers to measure time to first token;
    it changes no answer, so it stays out of :meth:`identity` (log-likelihoods never stream).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 6,
        timeout: float = 60.0,
        api: ApiKind = "auto",
        backoff_s: float = 0.5,
        structured_output: bool = True,
        stream: bool = False,
    ) -> None:
        if api not in ("auto", "chat", "completions"):
            raise ValueError(f"api must be 'auto', 'chat' or 'completions', not {api!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = model
        self.api: ApiKind = api
        self.base_url, self.query = split_base_url(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        if self.query:
            log.warning(
                "the base URL's query parameters (%s) are sent with every request; routes go to %s/...",
                ", ".join(self.query), public_url(self.base_url),
            )
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_s = backoff_s
        self.api_key_env = api_key_env
        self.stream = stream
        self.capabilities = Capabilities(
            loglikelihood=api != "chat",
            generate=True,
            chat=api != "completions",
            structured_output=structured_output and api != "completions",
        )
        self.stats = OpenAIStats()
        self._key = os.environ.get(api_key_env, "") or PLACEHOLDER_KEY
        self._secrets = [v for k, v in self.query.items() if v and any(h in k.lower() for h in _SECRET_HINTS)]
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._generate_route: str | None = None if api == "auto" else api
        self._has_prompt_logprobs: bool | None = None

    def __repr__(self) -> str:
        return f"OpenAIModel({self.name!r}, base_url={public_url(self.base_url)!r}, api={self.api!r})"

    def check_ready(self) -> None:
        """Refuse to call OpenAI's own endpoint without a key (a custom ``base_url`` may need none).

        Called before a run's first request and by the client; building the backend needs no
        key, so a dry run (which calls nothing) works without one.
        """
        if self._key == PLACEHOLDER_KEY and self.base_url == DEFAULT_BASE_URL and not self.query:
            raise OpenAIEndpointError(
                f"no API key: set the environment variable {self.api_key_env} "
                f"(or give a base_url for a server that needs none)"
            )

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.name, "base_url": public_url(self.base_url), "api": self.api}

    @property
    def client(self) -> Any:
        """The ``openai.OpenAI`` client, made on first use (its own retries off)."""
        with self._client_lock:
            if self._client is None:
                import openai

                self.check_ready()
                self._client = openai.OpenAI(
                    api_key=self._key, base_url=self.base_url, max_retries=0, timeout=self.timeout,
                    default_query=self.query or None,
                )
            return self._client

    # ------------------------------------------------------------------ protocol

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        if not self.capabilities.loglikelihood:
            raise UnsupportedRequestError(f"model {self.name!r} with api='chat' cannot score log-likelihoods")

        def call(request: LoglikelihoodRequest, stop: threading.Event) -> Response:
            return self._send(lambda: self._loglikelihood_once(request), stop)

        return self._stream(requests, call, probe=lambda: self._has_prompt_logprobs is None)

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        def call(request: GenerateRequest, stop: threading.Event) -> Response:
            if self._generate_route == "chat":
                return self._send(lambda: self._chat_once([_user(request.prompt)], request.params), stop)
            return self._send(lambda: self._completion_once(request.prompt, request.params), stop)

        return self._stream(requests, call, probe=lambda: self._generate_route is None)

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        if not self.capabilities.chat:
            raise UnsupportedRequestError(f"model {self.name!r} with api='completions' cannot chat")

        def call(request: ChatRequest, stop: threading.Event) -> Response:
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            return self._send(lambda: self._chat_once(messages, request.params), stop)

        return self._stream(requests, call, probe=lambda: False)

    # ------------------------------------------------------------------ scheduling

    def _stream(
        self,
        requests: Sequence[Any],
        call: Callable[[Any, threading.Event], Response],
        probe: Callable[[], bool],
    ) -> Iterator[tuple[int, Response]]:
        """Run ``call`` over ``requests``, at most ``concurrency`` at a time, yielding as each finishes.

        While ``probe()`` is true (something about the endpoint is still unknown),
        the first request goes alone so a misfit endpoint fails on one request.
        """
        stop = threading.Event()
        start = 0
        if requests and probe():
            yield 0, call(requests[0], stop)
            start = 1
        yield from self._pool(range(start, len(requests)), lambda i: call(requests[i], stop), stop)

    def _pool(
        self, indices: Iterable[int], run: Callable[[int], Response], stop: threading.Event
    ) -> Iterator[tuple[int, Response]]:
        todo = iter(indices)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="hyouka-openai")
        pending: dict[Future[Response], int] = {}

        def refill() -> None:
            while len(pending) < self.concurrency:
                index = next(todo, None)
                if index is None:
                    return
                pending[pool.submit(run, index)] = index

        try:
            refill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                finished = [(pending.pop(f), f.result()) for f in done]
                refill()
                yield from finished
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ one request, with retries

    def _send(self, attempt: Callable[[], Response], stop: threading.Event) -> Response:
        last: Failure | None = None
        for n in range(self.max_retries + 1):
            if n:
                self._count(retries=1)
                assert last is not None
                if stop.wait(backoff(n - 1, base_s=self.backoff_s, retry_after_s=last.retry_after)):
                    break
            self._count(attempts=1)
            try:
                return attempt()
            except (PromptLogprobsUnavailableError, OpenAIEndpointError, UnsupportedRequestError):
                raise
            except Exception as exc:
                last = classify(exc)
                if last.status in FATAL_STATUSES:
                    raise OpenAIEndpointError(self._fatal_message(last)) from None
                if not last.retryable:
                    break
        self._count(failures=1)
        failure = last or Failure("cancelled", "api_error", False)
        return Response.failure(self._redact(failure.message), failure.error_type)

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _fatal_message(self, failure: Failure) -> str:
        hint = {
            401: f"check the key in {self.api_key_env}",
            403: f"the key in {self.api_key_env} may lack access",
            404: f"check the model name {self.name!r} and the base URL",
        }[failure.status or 404]
        return self._redact(f"{public_url(self.base_url)} refused the request ({failure.message}); {hint}")

    def _redact(self, text: str) -> str:
        secrets = [*self._secrets, *([self._key] if self._key != PLACEHOLDER_KEY else [])]
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    # ------------------------------------------------------------------ the three calls

    def _completion_once(self, prompt: str, params: GenerationParams) -> Response:
        import openai

        client = self.client  # made before the clock starts: latencies time the request alone
        started = time.perf_counter()
        try:
            out = client.completions.create(
                model=self.name, prompt=prompt, **_sampling(params), **self._streaming()
            )
        except (openai.NotFoundError, openai.BadRequestError) as exc:
            if self._generate_route is None and _offers_only_chat(exc):
                self._generate_route = "chat"
                return self._chat_once([_user(prompt)], params)
            raise
        if self._generate_route is None:
            self._generate_route = "completions"
        if self.stream:
            return _read_stream(out, started, params, lambda choice: choice.text)
        latency = time.perf_counter() - started
        choice = first_choice(out, "text")
        return _finish(choice.text, choice.finish_reason, params, out.usage, latency)

    def _chat_once(self, messages: list[dict[str, str]], params: GenerationParams) -> Response:
        client = self.client
        started = time.perf_counter()
        out = client.chat.completions.create(
            model=self.name, messages=messages, **_sampling(params), **self._streaming()
        )
        if self.stream:
            return _read_stream(out, started, params, lambda choice: choice.delta.content if choice.delta else None)
        latency = time.perf_counter() - started
        choice = first_choice(out, "message")
        return _finish(choice.message.content or "", choice.finish_reason, params, out.usage, latency)

    def _streaming(self) -> dict[str, Any]:
        """Extra arguments of a generation call: ask for server-sent events and a final usage chunk."""
        return {"stream": True, "stream_options": {"include_usage": True}} if self.stream else {}

    def _loglikelihood_once(self, request: LoglikelihoodRequest) -> Response:
        import openai

        prompt = request.context + request.continuation
        client = self.client
        started = time.perf_counter()
        try:
            out = client.completions.create(
                model=self.name, prompt=prompt, echo=True, logprobs=1, max_tokens=0, temperature=0.0
            )
        except openai.BadRequestError as exc:
            message = str(exc).lower()
            if "echo" in message or "logprobs" in message:
                raise PromptLogprobsUnavailableError(self.name, public_url(self.base_url), str(exc)) from None
            raise
        latency = time.perf_counter() - started
        choice = first_choice(out, "text")
        try:
            logprob, greedy = continuation_logprob(choice.logprobs, request.context, request.continuation)
        except PromptLogprobsUnavailableError as exc:
            self._has_prompt_logprobs = False
            raise PromptLogprobsUnavailableError(self.name, public_url(self.base_url), exc.detail) from None
        except ValueError as exc:
            return Response.failure(exc, "api_error")
        self._has_prompt_logprobs = True
        usage = out.usage
        return Response(
            logprob=logprob,
            is_greedy=greedy,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=0,
            latency_s=latency,
            finish_reason=choice.finish_reason,
        )


def first_choice(out: Any, field: Literal["text", "message"]) -> Any:
    """The first choice of a completion (``field="text"``) or chat answer (``"message"``).

    A 200 answer that is not that shape (an HTML page the client hands back as text, a body
    with no choices, a choice without its text) is a :class:`MalformedResponseError`,
    which :meth:`OpenAIModel._send` retries like a server error.
    """
    if isinstance(out, (str, bytes)):
        text = out if isinstance(out, str) else out.decode("utf-8", "replace")
        raise MalformedResponseError(f"the body is not JSON: {_snippet(text)}")
    choices = getattr(out, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponseError(f"the answer has no choices: {_snippet(_dump(out))}")
    choice = choices[0]
    value = getattr(choice, field, None)
    if field == "text" and not isinstance(value, str):
        raise MalformedResponseError(f"the first choice has no text: {_snippet(_dump(choice))}")
    if field == "message" and not isinstance(getattr(value, "content", ""), (str, type(None))):
        raise MalformedResponseError(f"the first choice has no message: {_snippet(_dump(choice))}")
    if field == "message" and value is None:
        raise MalformedResponseError(f"the first choice has no message: {_snippet(_dump(choice))}")
    return choice


def _dump(value: Any) -> str:
    dump = getattr(value, "model_dump_json", None)
    return dump() if callable(dump) else repr(value)


def _snippet(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _user(prompt: str) -> dict[str, str]:
    return {"role": "user", "content": prompt}


def _sampling(params: GenerationParams) -> dict[str, Any]:
    out: dict[str, Any] = {"max_tokens": params.max_tokens, "temperature": params.temperature}
    if params.top_p != 1.0:
        out["top_p"] = params.top_p
    if params.stop:
        out["stop"] = list(params.stop)
    if params.seed is not None:
        out["seed"] = params.seed
    if params.response_format is not None:
        out["response_format"] = json.loads(params.response_format)
    return out


def _finish(
    text: str,
    finish_reason: str | None,
    params: GenerationParams,
    usage: Any,
    latency: float,
    ttft: float | None = None,
) -> Response:
    """A generation :class:`Response`, cut at the first stop string in case the server ignored them."""
    cut = min((i for s in params.stop if s and (i := text.find(s)) >= 0), default=-1)
    if cut >= 0:
        text, finish_reason = text[:cut], "stop"
    return Response(
        text=text,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        latency_s=latency,
        ttft_s=ttft,
        finish_reason=finish_reason,
    )


def _read_stream(
    stream: Any, started: float, params: GenerationParams, piece: Callable[[Any], str | None]
) -> Response:
    """Assemble a streamed answer from its chunks (``piece`` gets a choice's new text).

    ``ttft_s`` runs to the first chunk that carries text (``None`` if none does),
    ``latency_s`` to the last chunk; usage comes from the final usage chunk, if any.
    A connection lost midway raises the client's retryable errors, so the whole
    request is sent again like any failed attempt.
    """
    parts: list[str] = []
    finish_reason: str | None = None
    usage: Any = None
    ttft: float | None = None
    last: float | None = None
    n_choices = 0
    with stream:
        try:
            for chunk in stream:
                last = time.perf_counter()
                if isinstance(chunk, (str, bytes)) or not isinstance(getattr(chunk, "choices", None), list):
                    raise MalformedResponseError(f"a stream event is not a completion chunk: {_snippet(_dump(chunk))}")
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                n_choices += len(chunk.choices)
                for choice in chunk.choices:
                    if getattr(choice, "index", 0) != 0:
                        continue
                    text = piece(choice)
                    if text:
                        if ttft is None:
                            ttft = last - started
                        parts.append(text)
                    if choice.finish_reason is not None:
                        finish_reason = choice.finish_reason
        except MalformedResponseError:
            raise
        except ValueError as exc:  # an event whose data is not a JSON chunk
            raise MalformedResponseError(f"a stream event is not JSON ({exc})") from exc
    if not n_choices:
        raise MalformedResponseError("the stream held no completion chunks (was it a server-sent event stream?)")
    latency = (last if last is not None else time.perf_counter()) - started
    return _finish("".join(parts), finish_reason, params, usage, latency, ttft)


def _offers_only_chat(exc: Any) -> bool:
    """Whether a refusal of ``/completions`` may mean "this server or model only does chat" (if it means
    the model does not exist, chat refuses too and the error surfaces there)."""
    message = str(exc).lower()
    return getattr(exc, "status_code", None) == 404 or ("chat" in message and "completions" in message)
