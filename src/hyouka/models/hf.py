"""The ``hf:`` backend: local or hub transformers causal LMs, run in-process.

``HFModel("rinna/japanese-gpt-neox-3.6b")`` or ``HFModel("/path/to/checkpoint")``. torch and
transformers are imported when a model is built, never at ``import hyouka`` time. Building one
reads the tokenizer and config, which settle its identity (the response-cache keys); the weights
are loaded on the first forward pass, so a run answered wholly from the cache never loads them.

Batching and accounting
-----------------------
Work is sorted by length and packed into batches of at most ``token_budget`` padded token slots
(rows x longest length). With ``batch_size="auto"`` and no ``token_budget`` the budget is probed
on CUDA (the longest item runs alone first, its peak memory per slot is measured and 70% of the
free memory is shared out accordingly; an out-of-memory batch halves the budget and is retried)
and is a RAM-based default on CPU; an integer ``batch_size`` caps requests per batch instead.
Generation batches count ``prompt + max_tokens`` slots per row. Results are yielded as each batch
finishes. ``latency_s`` of a response is its share of its batch's wall
time (batch wall time / number of requests in the batch), so the latencies of a run add up to its
compute time.

Scoring modes (``scoring=``): ``"shared_prefix"`` (default) runs each distinct context once and
scores every continuation on top of its cached keys/values; ``"naive"`` runs one full pass per
request. Both give the same log-likelihoods up to float rounding; see ``hf_scoring``. Models whose
cache cannot be shared between rows, or that take no position ids, fall back to naive scoring.
The context/continuation boundary rule is documented in ``hf_tokens``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from hyouka.errors import ArgumentError
from hyouka.models.base import (
    Capabilities,
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Response,
    UnsupportedRequestError,
)
from hyouka.models.fingerprint import folder_fingerprint
from hyouka.models.hf_batching import Unit, cpu_budget, plan_batches
from hyouka.models.hf_deps import require_hf
from hyouka.models.hf_forward import CacheReuseUnsupported, Forward
from hyouka.models.hf_generate import generate_batch
from hyouka.models.hf_scoring import Group, TrunkMemo, build_groups, score_naive, score_shared
from hyouka.models.hf_tokens import EncodedPair, encode_pairs, encode_prompts, special_prefix

log = logging.getLogger(__name__)

Scoring = Literal["shared_prefix", "naive"]
DTYPES = ("auto", "float32", "bfloat16", "float16")


class HFModel:
    """A transformers causal LM behind the hyouka model protocol."""

    def __init__(
        self,
        name_or_path: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int | Literal["auto"] = "auto",
        token_budget: int | None = None,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        scoring: Scoring = "shared_prefix",
        attn_implementation: str | None = None,
    ) -> None:
        require_hf()
        import torch
        from transformers import AutoConfig, AutoTokenizer

        if dtype not in DTYPES:
            raise ArgumentError(f"{{dtype}} takes one of {', '.join(DTYPES)}, not {dtype!r}", dtype="")
        if scoring not in ("shared_prefix", "naive"):
            raise ValueError(f"scoring must be 'shared_prefix' or 'naive', not {scoring!r}")
        if batch_size != "auto" and (not isinstance(batch_size, int) or batch_size < 1):
            raise ArgumentError(f"{{batch_size}} takes a positive number or 'auto', not {batch_size!r}",
                                batch_size="")
        self.torch = torch
        self.name = name_or_path
        self.scoring: Scoring = scoring
        self.batch_size = batch_size
        self.device = torch.device(_pick_device(torch, device))
        self.tokenizer = AutoTokenizer.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
        # the config and tokenizer settle the identity (cache keys); the weights wait for the first forward pass
        self.config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
        self.dtype = _pick_dtype(torch, dtype, self.device, self.config)
        self.max_length = int(max_length or _model_max_length(self.config, self.tokenizer))
        self._revision = revision
        self._load_options: dict[str, Any] = {
            "revision": revision,
            "trust_remote_code": trust_remote_code,
            _dtype_kwarg(): self.dtype,
            **({"attn_implementation": attn_implementation} if attn_implementation else {}),
        }
        self._model: Any = None
        self._forward: Forward | None = None
        self._prefix = special_prefix(self.tokenizer)
        self._budget = token_budget
        self._identity: dict[str, Any] | None = None
        self.capabilities = Capabilities(
            loglikelihood=True,
            generate=True,
            chat=bool(getattr(self.tokenizer, "chat_template", None)),
        )

    # -- weights ----------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The transformers model, loaded on first use: a run answered from the cache never loads it."""
        self._load()
        return self._model

    @property
    def _fwd(self) -> Forward:
        return self._load()

    def load(self) -> None:
        """Load the weights now rather than on the first forward pass: to time runs without it, or to fail early."""
        self._load()

    def _load(self) -> Forward:
        """Load the weights once; a model that takes no position ids switches to naive scoring here."""
        if self._forward is not None:
            return self._forward
        from transformers import AutoModelForCausalLM

        log.info("loading %s onto %s", self.name, self.device)
        with _no_progress_bar():  # the run's own progress shows; a second "Loading weights" bar would tear it
            model = AutoModelForCausalLM.from_pretrained(self.name, config=self.config, **self._load_options)
        model.to(self.device).eval()
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._model, self._forward = model, Forward(model, self.device, int(pad))
        if self.scoring == "shared_prefix" and not self._forward.positions_ok:
            log.warning("%s takes no position ids; using naive scoring", self.name)
            self.scoring = "naive"
        return self._forward

    # -- identity ---------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Backend, model, resolved revision, dtype, tokenizer and max length (no credentials).

        The scoring mode is left out on purpose: shared-prefix and naive scores agree to float rounding.
        """
        if self._identity is None:
            self._identity = {
                "backend": "hf",
                "model": self.name,
                "revision": self._resolved_revision(),
                "dtype": str(self.dtype).removeprefix("torch."),
                "tokenizer": getattr(self.tokenizer, "name_or_path", None) or self.name,
                "tokenizer_class": type(self.tokenizer).__name__,
                "max_length": self.max_length,
            }
        return dict(self._identity)

    def _resolved_revision(self) -> str | None:
        """The hub commit the weights came from, else the content fingerprint of a local folder.

        The fingerprint hashes every file below the folder (see :mod:`hyouka.models.fingerprint`),
        so a retrained checkpoint with the same file names and sizes gets its own cache entries.
        """
        commit = getattr(self.config, "_commit_hash", None)
        if commit:
            return str(commit)
        path = Path(self.name)
        if path.is_dir():
            return "local-" + folder_fingerprint(path)
        return self._revision

    # -- log-likelihood ---------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        """Score each continuation given its context; yields per finished batch."""
        pairs = encode_pairs(
            self.tokenizer,
            [(r.context, r.continuation) for r in requests],
            prefix=self._prefix,
            max_length=self.max_length,
        )
        todo = []
        for i, pair in enumerate(pairs):
            if pair.error:
                yield i, Response.failure(pair.error, "context_length")
            elif pair.n_cont == 0:
                yield i, Response(logprob=0.0, is_greedy=True, prompt_tokens=len(pair.ids), completion_tokens=0)
            else:
                todo.append(i)
        if not todo:
            return
        self._load()  # before choosing the scoring mode, which loading can change
        if self.scoring == "shared_prefix":
            yield from self._loglikelihood_shared(pairs, todo)
        else:
            yield from self._loglikelihood_naive(pairs, todo)

    def _loglikelihood_naive(self, pairs: list[EncodedPair], todo: list[int]) -> Iterator[tuple[int, Response]]:
        units = [Unit(1, len(pairs[i].ids)) for i in todo]

        def run(batch: list[int]) -> list[tuple[int, Response]]:
            members = [todo[u] for u in batch]
            scores = score_naive(self._fwd, [pairs[i] for i in members])
            return [(i, _ll_response(pairs[i], s)) for i, s in zip(members, scores, strict=True)]

        yield from self._run_batches(units, run)

    def _loglikelihood_shared(self, pairs: list[EncodedPair], todo: list[int]) -> Iterator[tuple[int, Response]]:
        budget, max_rows = self._limits()
        packed = self._fwd.mask_kind is not None
        groups = [part for g in build_groups(pairs, todo) for part in _split_group(pairs, g, packed, budget, max_rows)]
        units = [_group_unit(pairs, g, packed) for g in groups]
        memo = TrunkMemo()

        def run(batch: list[int]) -> list[tuple[int, Response]]:
            chosen = [groups[u] for u in batch]
            members = [m for g in chosen for m in g.members]
            try:
                scores = score_shared(self._fwd, pairs, chosen, memo)
            except CacheReuseUnsupported as exc:
                log.warning("shared-prefix scoring unavailable for %s (%s); using naive scoring", self.name, exc)
                self.scoring = "naive"
                scores = score_naive(self._fwd, [pairs[i] for i in members])
            return [(i, _ll_response(pairs[i], s)) for i, s in zip(members, scores, strict=True)]

        yield from self._run_batches(units, run)

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        """Complete raw prompts (the tokenizer's BOS is added as for any encode)."""
        yield from self._generate([r.prompt for r in requests], [r.params for r in requests], self._prefix)

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        """Answer conversations rendered with the tokenizer's chat template."""
        if not self.capabilities.chat:
            raise UnsupportedRequestError(f"tokenizer of {self.name!r} has no chat template")
        prompts = [
            self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in r.messages],
                tokenize=False,
                add_generation_prompt=True,
            )
            for r in requests
        ]
        yield from self._generate(prompts, [r.params for r in requests], [])

    def _generate(
        self, prompts: list[str], params: list[GenerationParams], prefix: list[int]
    ) -> Iterator[tuple[int, Response]]:
        encoded = encode_prompts(
            self.tokenizer,
            prompts,
            prefix=prefix,
            room=[max(0, p.max_tokens) for p in params],
            max_length=self.max_length,
        )
        todo = []
        for i, ids in enumerate(encoded):
            if ids is None:
                yield (
                    i,
                    Response.failure(
                        f"max_tokens={params[i].max_tokens} leaves no room for the prompt "
                        f"(model max length {self.max_length})",
                        "context_length",
                    ),
                )
            else:
                todo.append(i)
        units = [Unit(1, len(encoded[i]) + max(0, params[i].max_tokens)) for i in todo]  # type: ignore[arg-type]
        eos = _eos_ids(self.model, self.tokenizer)

        def run(batch: list[int]) -> list[tuple[int, Response]]:
            members = [todo[u] for u in batch]
            results = generate_batch(
                self._fwd, self.tokenizer, [encoded[i] for i in members], [params[i] for i in members], eos
            )  # type: ignore[misc]
            return [
                (
                    i,
                    Response(
                        text=g.text,
                        finish_reason=g.finish_reason,
                        prompt_tokens=len(encoded[i]),  # type: ignore[arg-type]
                        completion_tokens=g.completion_tokens,
                    ),
                )
                for i, g in zip(members, results, strict=True)
            ]

        yield from self._run_batches(units, run)

    # -- batching ---------------------------------------------------------------------------
    def _limits(self) -> tuple[int | None, int | None]:
        """(token budget, request cap) for planning batches; (None, None) on CUDA until probed."""
        if isinstance(self.batch_size, int):
            return self._budget, self.batch_size
        if self._budget is None and self.device.type != "cuda":
            self._budget = cpu_budget(self.config, self.dtype.itemsize)
        return self._budget, None

    def _run_batches(
        self, units: list[Unit], run: Callable[[list[int]], list[tuple[int, Response]]]
    ) -> Iterator[tuple[int, Response]]:
        """Plan batches over ``units``, run them (probing/halving on CUDA), yield responses with latencies."""
        torch = self.torch
        pending = set(range(len(units)))
        plans: list[list[int]] = []
        planned_for: tuple[int | None, int | None] | None = None
        while pending:
            limits = self._limits()
            probing = self.device.type == "cuda" and limits == (None, None)
            if limits != planned_for or not plans:  # (re)plan when the budget is first known or changes
                order = sorted(pending)
                batches = plan_batches([units[i] for i in order], budget=limits[0], max_rows=limits[1])
                plans, planned_for = [[order[j] for j in b] for b in batches], limits
            batch = plans[0][:1] if probing else plans[0]
            start = time.perf_counter()
            try:
                if probing:
                    torch.cuda.synchronize(self.device)
                    torch.cuda.reset_peak_memory_stats(self.device)
                    base = torch.cuda.memory_allocated(self.device)
                with torch.inference_mode():
                    out = run(batch)
                if probing:
                    peak = torch.cuda.max_memory_allocated(self.device) - base
                    per_slot = max(1.0, peak / _slots(units, batch))
                    free, _ = torch.cuda.mem_get_info(self.device)
                    self._budget = max(256, int(0.7 * free / per_slot))
                    log.info("token budget %d (%.0f bytes per slot probed)", self._budget, per_slot)
            except torch.OutOfMemoryError:
                if len(batch) == 1:
                    raise
                torch.cuda.empty_cache()
                self._budget = max(1, _slots(units, batch) // 2)
                log.warning("CUDA out of memory; lowering the token budget to %d", self._budget)
                continue
            wall = time.perf_counter() - start
            share = wall / max(1, len(out))
            for i, response in out:
                response.latency_s = share
                yield i, response
            pending.difference_update(batch)
            plans = [b for b in ([i for i in b if i in pending] for b in plans) if b]


def _slots(units: list[Unit], batch: list[int]) -> int:
    """Padded token slots a batch occupies (rows x longest length)."""
    return sum(units[i].rows for i in batch) * max(units[i].length for i in batch)


def _group_unit(pairs: list[EncodedPair], group: Group, packed: bool) -> Unit:
    """Batch cost of a group: one row with its context and every member's tail (packed), else a row per member."""
    if packed:
        tails = sum(len(pairs[m].ids) - 1 - s for m, s in zip(group.members, group.stable, strict=True))
        return Unit(1, len(group.prefix) + tails, len(group.members))
    return Unit(len(group.members), max(len(pairs[m].ids) for m in group.members))


def _split_group(
    pairs: list[EncodedPair], group: Group, packed: bool, budget: int | None, max_rows: int | None
) -> list[Group]:
    """Cut a group too big for one batch into parts that each fit (each part reruns the context)."""
    unit = _group_unit(pairs, group, packed)
    n = len(group.members)
    parts = -(-unit.rows * unit.length // budget) if budget else 1
    size = min(n, -(-n // max(1, parts)), max_rows or n)
    return [Group(group.ref, group.members[s : s + size], group.stable[s : s + size]) for s in range(0, n, size)]


def _ll_response(pair: EncodedPair, score: tuple[float, bool]) -> Response:
    return Response(
        logprob=score[0],
        is_greedy=score[1],
        prompt_tokens=pair.cont_start,
        completion_tokens=pair.n_cont,
    )


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """Transformers' own progress bars off for a while (restored as they were)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _pick_device(torch: Any, device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype_kwarg() -> str:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _pick_dtype(torch: Any, dtype: str, device: Any, config: Any) -> Any:
    """``auto``: float32 on CPU; on GPU the checkpoint's dtype (bfloat16 if unsupported float16 etc.)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cpu":
        return torch.float32
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(stored, str):
        stored = getattr(torch, stored, None)
    if stored in (torch.bfloat16, torch.float16):
        if stored == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16
        return stored
    return torch.float32


def _model_max_length(config: Any, tokenizer: Any) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    return 2048


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids
