"""The ``openai:`` backend: any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp...).

Requests go out through the official ``openai`` client from a pool of
``concurrency`` threads, never more in flight, and stream back in completion
order. Failed attempts are retried here (the client's own retries are off)
with jittered exponential backoff that honours ``Retry-After``; a request
that still fails becomes a failed :class:`Response` and the run goes on.
Log-likelihoods need prompt log-probabilities (``echo`` + ``logprobs`` on
``/completions``, as vLLM offers them); endpoints without them are detected
on the first request. The prompts go out as token ids, split into context and
continuation by the rule of ``hf:`` over the model's tokenizer (``tokenizer=``,
else the server's own through vLLM's ``/tokenize``), all choices of one
question in one request so the server's prefix cache shares the context.
With ``stream=True`` generations arrive as server-sent events, which also
measures the time to the first token (``Response.ttft_s``).
"""

from __future__ import annotations

import contextlib
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
from hyouka.models.hf_tokens import EncodedPair, encode_pairs, special_prefix
from hyouka.models.openai_logprobs import (
    PromptLogprobsUnavailableError,
    plan_next_tokens,
    read_next_tokens,
    span_logprob,
)
from hyouka.models.openai_retry import Failure, MalformedResponseError, backoff, classify
from hyouka.models.openai_tokens import (
    ServerTokenizer,
    TokenizeUnavailableError,
    load_tokenizer,
    tokenizer_max_length,
)

ApiKind = Literal["auto", "chat", "completions"]
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "EMPTY"
FATAL_STATUSES = frozenset({401, 403, 404})
log = logging.getLogger(__name__)
MAX_GROUP = 64  # prompts of one /completions log-likelihood request

__all__ = ["OpenAIEndpointError", "OpenAIModel", "OpenAIStats", "PromptLogprobsUnavailableError"]


# an interrupted run waits this long for the calls it has in flight (already paid for), to cache their answers
ABANDON_WAIT_S = 15.0

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
    ``tokenizer`` (a Hugging Face name or folder) tokenizes log-likelihood requests locally; without it
    the server's ``/tokenize`` does. It is part of the identity.
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
        tokenizer: str | None = None,
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
        self._abandoned: list[tuple[Any, Response]] = []
        self._abandoned_lock = threading.Lock()
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
        self._key = self._read_key()
        self._secrets = [v for k, v in self.query.items() if v and any(h in k.lower() for h in _SECRET_HINTS)]
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._generate_route: str | None = None if api == "auto" else api
        self._has_prompt_logprobs: bool | None = None
        self.tokenizer_name = tokenizer
        self._next_token_scoring: bool | None = None  # vLLM's logprob_token_ids; else echoed prompts
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIModel({self.name!r}, base_url={public_url(self.base_url)!r}, api={self.api!r})"

    def _read_key(self) -> str:
        """The API key (a hook: databricks: and azure: find theirs elsewhere); ``PLACEHOLDER_KEY`` if none."""
        return os.environ.get(self.api_key_env, "") or PLACEHOLDER_KEY

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
        return {
            "backend": "openai",
            "model": self.name,
            "base_url": public_url(self.base_url),
            "api": self.api,
            "tokenizer": self.tokenizer_name,
        }

    @property
    def client(self) -> Any:
        """The client, made on first use by :meth:`_make_client`."""
        with self._client_lock:
            if self._client is None:
                self.check_ready()
                self._client = self._make_client()
            return self._client

    # ------------------------------------------------------------------ hooks for services built on this class
    # (databricks:, azure:): how the client is made and what a refusal hints at.

    def _make_client(self) -> Any:
        """The ``openai.OpenAI`` client (its own retries off: :meth:`_send` retries)."""
        import openai

        return openai.OpenAI(api_key=self._key, base_url=self.base_url, max_retries=0, timeout=self.timeout,
                             default_query=self.query or None)

    def _refusal_hint(self, failure: Failure) -> str:
        """What to check when the endpoint answers 401, 403 or 404 (see ``FATAL_STATUSES``)."""
        return {
            401: f"check the key in {self.api_key_env}",
            403: f"the key in {self.api_key_env} may lack access",
            404: f"check the model name {self.name!r} and the base URL",
        }[failure.status or 404]

    # ------------------------------------------------------------------ protocol

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        """Score requests by token ids, one ``/completions`` request per context (at most ``MAX_GROUP`` prompts)."""
        if not self.capabilities.loglikelihood:
            raise UnsupportedRequestError(f"model {self.name!r} with api='chat' cannot score log-likelihoods")
        if not requests:
            return iter(())
        tokenizer = self.scoring_tokenizer()
        pairs = encode_pairs(
            tokenizer,
            [(r.context, r.continuation) for r in requests],
            prefix=special_prefix(tokenizer),
            max_length=tokenizer_max_length(tokenizer) - 1,  # the whole sequence is the prompt
        )
        return self._score_groups(pairs, [r.context for r in requests], requests)

    def _score_groups(self, pairs: list[EncodedPair], contexts: list[str], requests: Sequence[Any] = ()
                      ) -> Iterator[tuple[int, Response]]:
        by_context: dict[str, list[int]] = {}
        for i, (pair, context) in enumerate(zip(pairs, contexts, strict=True)):
            if pair.error is not None:
                yield i, Response.failure(pair.error, "context_length")
            elif pair.n_cont == 0:  # an empty continuation: nothing to score, as hf: answers it
                yield i, Response(logprob=0.0, is_greedy=True, prompt_tokens=len(pair.ids), completion_tokens=0)
            else:
                by_context.setdefault(context, []).append(i)
        groups = [g[lo : lo + MAX_GROUP] for g in by_context.values() for lo in range(0, len(g), MAX_GROUP)]
        stop = threading.Event()

        def call(k: int) -> Any:
            members = [pairs[i] for i in groups[k]]
            return self._send(lambda: self._score_once(members), stop)

        start = 0
        if groups and self._has_prompt_logprobs is None:  # the first request alone tells if the endpoint can
            yield from _fan_out(groups[0], call(0))
            start = 1
        if not requests:
            for k, result in self._pool(range(start, len(groups)), call, stop):
                yield from _fan_out(groups[k], result)
            return
        yield from self._pool_groups(requests, groups, range(start, len(groups)), call, stop)

    def scoring_tokenizer(self) -> Any:
        """The tokenizer log-likelihood requests are split with: ``tokenizer=``, else the server's ``/tokenize``."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                if self.tokenizer_name:
                    self._tokenizer = load_tokenizer(self.tokenizer_name)
                else:
                    self._tokenizer = self._server_tokenizer()
            return self._tokenizer

    def _server_tokenizer(self) -> ServerTokenizer:
        import httpx

        root = self.base_url.removesuffix("/v1")
        headers = {"authorization": f"Bearer {self._key}"}
        try:
            return ServerTokenizer(
                httpx.Client(headers=headers, timeout=self.timeout), root, self.name, concurrency=self.concurrency
            )
        except (TokenizeUnavailableError, httpx.HTTPError) as exc:
            reason = self._redact(str(exc))
        self._check_prompt_logprobs()  # a hosted model: say it has no prompt log-probabilities at all
        raise UnsupportedRequestError(
            f"{public_url(self.base_url)} (model {self.name!r}) tokenizes nothing for us ({reason}): "
            "log-likelihoods need the model's token ids; give its tokenizer with --tokenizer "
            "(a Hugging Face name or folder), or use a server with /tokenize such as vLLM"
        )

    def _check_prompt_logprobs(self) -> None:
        """Raise :class:`PromptLogprobsUnavailableError` if an echoed text prompt comes back without them."""
        import openai

        try:
            out = self.client.completions.create(
                model=self.name, prompt="a", echo=True, logprobs=1, max_tokens=0, temperature=0.0
            )
        except openai.BadRequestError as exc:
            self._raise_if_no_prompt_logprobs(exc)
            return
        except openai.APIError:
            return
        try:
            choice = all_choices(out)[0]
        except MalformedResponseError:
            return  # a broken answer says nothing about prompt log-probabilities; the scoring request retries it
        if not _field(getattr(choice, "logprobs", None), "token_logprobs"):
            raise PromptLogprobsUnavailableError(self.name, public_url(self.base_url), "none in the answer")

    def _raise_if_no_prompt_logprobs(self, exc: Exception) -> None:
        message = str(exc).lower()
        if "echo" in message or "logprobs" in message:
            self._has_prompt_logprobs = False
            raise PromptLogprobsUnavailableError(self.name, public_url(self.base_url), str(exc)) from None

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
        yield from self._pool(range(start, len(requests)), lambda i: call(requests[i], stop), stop,
                              keep=lambda i, response: self._abandon(requests[i], response))

    def _abandon(self, request: Any, response: Response) -> None:
        with self._abandoned_lock:
            self._abandoned.append((request, response))

    def _pool_groups(
        self, requests: Sequence[Any], groups: Sequence[list[int]], indices: Iterable[int],
        call: Callable[[int], Any], stop: threading.Event,
    ) -> Iterator[tuple[int, Response]]:
        """:meth:`_pool` over groups of requests (one call answers a group: log-likelihoods, embeddings), each
        member's answer yielded with its request's index. Closed early, the answers of the calls in flight and
        those of a group not yet all read are kept with their requests (see :meth:`take_abandoned`)."""

        def keep(k: int, result: Any) -> None:
            for i, response in _fan_out(groups[k], result):
                self._abandon(requests[i], response)

        with contextlib.closing(self._pool(indices, call, stop, keep=keep)) as results:
            for k, result in results:
                members = list(_fan_out(groups[k], result))
                read = 0
                try:
                    for member in members:
                        read += 1  # handed over: the caller has it
                        yield member
                finally:
                    for i, response in members[read:]:  # the caller stopped inside the group
                        self._abandon(requests[i], response)

    def take_abandoned(self) -> list[tuple[Any, Response]]:
        """Answers that arrived after the caller stopped reading (an interrupted run), with their requests.

        They were paid for: the executor caches them, so the run that resumes does not send them again.
        """
        with self._abandoned_lock:
            out, self._abandoned = self._abandoned, []
        return out

    def _pool(
        self, indices: Iterable[int], run: Callable[[int], Response], stop: threading.Event,
        keep: Callable[[int, Response], None] | None = None,
    ) -> Iterator[tuple[int, Response]]:
        """Yield ``(index, run(index))`` as each finishes, ``concurrency`` at a time.

        Closed early (the caller stopped: Ctrl-C, a budget), it sends nothing more, waits up to
        :data:`ABANDON_WAIT_S` for the calls in flight and hands their answers, and those finished but
        not yet read, to ``keep``.
        """
        todo = iter(indices)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="hyouka-openai")
        pending: dict[Future[Response], int] = {}
        finished: list[tuple[int, Response]] = []

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
                while finished:
                    yield finished.pop(0)
        finally:
            stop.set()  # no retry after this
            if keep is not None and (pending or finished):
                done, _ = wait(pending, timeout=ABANDON_WAIT_S)
                for index, response in [*finished, *((pending[f], f.result()) for f in done)]:
                    keep(index, response)
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
        hint = self._refusal_hint(failure)
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

    def _score_once(self, pairs: list[EncodedPair]) -> list[Response]:
        """One ``/completions`` request scoring ``pairs``: next-token log-probabilities where the server
        reports chosen ids (vLLM, prefix cache shared), else echoed prompt log-probabilities."""
        if self._next_token_scoring is not False:
            responses = self._score_next_tokens(pairs)
            if responses is not None:
                self._next_token_scoring = self._has_prompt_logprobs = True
                return responses
            self._next_token_scoring = False
        return self._score_echoed(pairs)

    def _score_next_tokens(self, pairs: list[EncodedPair]) -> list[Response] | None:
        """Score each continuation token as the next token after its prefix; None if the server cannot."""
        import openai

        plan = plan_next_tokens(pairs)
        probing = self._next_token_scoring is None
        started = time.perf_counter()
        try:
            out = self.client.completions.create(
                model=self.name, prompt=plan.prompts, max_tokens=1, temperature=0.0, logprobs=0,
                extra_body={"logprob_token_ids": plan.targets, "return_tokens_as_token_ids": True},
            )  # fmt: skip
        except openai.BadRequestError:
            if probing:
                return None
            raise
        latency = time.perf_counter() - started
        choices = sorted(all_choices(out), key=lambda c: c.index)
        scores = read_next_tokens(choices, plan) if len(choices) == len(plan.prompts) else None
        if scores is None:
            if probing:
                return None
            raise MalformedResponseError("the server's answer lacks the log-probabilities of the requested token ids")
        share = latency / len(pairs)
        return [
            Response(logprob=lp, is_greedy=greedy, prompt_tokens=len(pair.ids), completion_tokens=0, latency_s=share)
            for pair, (lp, greedy) in zip(pairs, scores, strict=True)
        ]

    def _score_echoed(self, pairs: list[EncodedPair]) -> list[Response]:
        """One echoed ``/completions`` request over the token ids of ``pairs``; a Response for each."""
        import openai

        client = self.client
        started = time.perf_counter()
        try:
            out = client.completions.create(
                model=self.name, prompt=[p.ids for p in pairs], echo=True, logprobs=1, max_tokens=0, temperature=0.0
            )
        except openai.BadRequestError as exc:
            self._raise_if_no_prompt_logprobs(exc)
            raise
        latency = time.perf_counter() - started
        choices = sorted(all_choices(out, len(pairs)), key=lambda c: c.index)
        share = latency / len(pairs)  # the request's time, spread over the prompts it scored
        responses = []
        for pair, choice in zip(pairs, choices, strict=True):
            try:
                logprob, greedy = span_logprob(choice.logprobs, pair.cont_start, len(pair.ids))
            except PromptLogprobsUnavailableError as exc:
                self._has_prompt_logprobs = False
                raise PromptLogprobsUnavailableError(self.name, public_url(self.base_url), exc.detail) from None
            except ValueError as exc:
                responses.append(Response.failure(exc, "api_error"))
                continue
            responses.append(
                Response(
                    logprob=logprob,
                    is_greedy=greedy,
                    prompt_tokens=len(pair.ids),
                    completion_tokens=0,
                    latency_s=share,
                    finish_reason=choice.finish_reason,
                )
            )
        self._has_prompt_logprobs = True
        return responses


def _fan_out(members: list[int], result: Any) -> Iterator[tuple[int, Response]]:
    """Pair a group's responses with its request indices; one failure stands for every member."""
    if isinstance(result, Response):
        return ((i, result) for i in members)
    return zip(members, result, strict=True)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def all_choices(out: Any, expected: int | None = None) -> list[Any]:
    """The choices of a 200 answer, refused as a :class:`MalformedResponseError` (retried like a server
    error) when the body is not JSON, holds no choices, or not the ``expected`` number of them."""
    if isinstance(out, (str, bytes)):
        text = out if isinstance(out, str) else out.decode("utf-8", "replace")
        raise MalformedResponseError(f"the body is not JSON: {_snippet(text)}")
    choices = getattr(out, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponseError(f"the answer has no choices: {_snippet(_dump(out))}")
    if expected is not None and len(choices) != expected:
        raise MalformedResponseError(f"{expected} prompts sent, {len(choices)} choices answered")
    return choices


def first_choice(out: Any, field: Literal["text", "message"]) -> Any:
    """The first choice of a completion (``field="text"``) or chat answer (``"message"``).

    A 200 answer that is not that shape (an HTML page the client hands back as text, a body
    with no choices, a choice without its text) is a :class:`MalformedResponseError`,
    which :meth:`OpenAIModel._send` retries like a server error.
    """
    choice = all_choices(out)[0]
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
