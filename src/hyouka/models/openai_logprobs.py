"""Read a continuation's log-likelihood from ``/completions`` prompt log-probabilities (``echo=True``).

The prompt is sent as token ids, so the answer's ``token_logprobs[i]`` belongs to the ``i``-th id
sent: the continuation is found by position, never by ``text_offset`` (servers such as vLLM count
the decoded BOS in the offsets and lose characters where byte-level BPE splits a character).
Where the server reports chosen ids at the next position (vLLM's ``logprob_token_ids``), each
continuation token is read there instead (:class:`NextTokenPlan`), which lets vLLM reuse its prefix cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hyouka.models.base import UnsupportedRequestError
from hyouka.models.hf_tokens import EncodedPair


class PromptLogprobsUnavailableError(UnsupportedRequestError):
    """The endpoint does not return log-probabilities of prompt tokens, so it cannot score choices."""

    def __init__(self, model: str | None = None, base_url: str | None = None, detail: str = "") -> None:
        self.detail = detail
        where = f"the endpoint {base_url} (model {model!r})" if base_url else "the endpoint"
        super().__init__(
            f"{where} does not return prompt log-probabilities ({detail or 'none in the answer'}). "
            "Log-likelihood scoring needs them: echo=True with logprobs on /completions, as vLLM offers; "
            "hosted OpenAI models do not. Evaluate this model with --mode generate instead."
        )


def span_logprob(logprobs: Any, start: int, end: int) -> tuple[float, bool | None]:
    """Sum the log-probabilities of prompt tokens ``start:end``; say whether each was the most likely one.

    ``logprobs`` is one choice's ``logprobs`` object of an echoed completion whose prompt was
    token ids. ``is_greedy`` is None when ``top_logprobs`` are missing. Raises
    :class:`PromptLogprobsUnavailableError` when the answer holds no prompt log-probabilities and
    ``ValueError`` when it holds fewer than ``end`` or an unscored token inside the span.
    """
    tokens = _field(logprobs, "token_logprobs")
    if not tokens or all(t is None for t in tokens):
        raise PromptLogprobsUnavailableError(detail="the answer holds no token_logprobs")
    if len(tokens) < end:
        raise ValueError(f"the server scored {len(tokens)} prompt tokens, {end} were sent")
    tops = _field(logprobs, "top_logprobs") or []
    total, greedy = 0.0, True
    for i in range(start, end):
        lp = tokens[i]
        if lp is None:
            raise ValueError(f"prompt token {i} has no log-probability (no context before it?)")
        total += lp
        top = tops[i] if i < len(tops) else None
        if greedy is not None:
            greedy = None if not top else greedy and lp >= max(top.values()) - 1e-6
    return total, greedy


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


@dataclass
class NextTokenPlan:
    """Log-likelihoods read one continuation token at a time, as the next token after its prefix.

    vLLM computes prompt log-probabilities without its prefix cache, so every choice would pay for
    the whole context again; asked for the log-probabilities of chosen ids at the next position
    (``logprob_token_ids``), it reuses the cached context and a question with one-token choices
    costs one prompt. ``prompts`` are the distinct prefixes, ``targets`` every id to report, and
    ``steps[k]`` the (prompt index, token id) of each continuation token of pair ``k``.
    """

    prompts: list[list[int]]
    targets: list[int]
    steps: list[list[tuple[int, int]]]


def plan_next_tokens(pairs: Sequence[EncodedPair]) -> NextTokenPlan:
    """The prompts and target ids that score every continuation token of ``pairs``."""
    index: dict[tuple[int, ...], int] = {}
    steps = []
    for pair in pairs:
        row = []
        for j in range(pair.cont_start, len(pair.ids)):
            prefix = tuple(pair.ids[:j])
            row.append((index.setdefault(prefix, len(index)), pair.ids[j]))
        steps.append(row)
    return NextTokenPlan([list(p) for p in index], sorted({t for row in steps for _, t in row}), steps)


def read_next_tokens(choices: Sequence[Any], plan: NextTokenPlan) -> list[tuple[float, bool]] | None:
    """Each pair's (log-likelihood, is_greedy) from the answer's first generated position; None if the
    server left out a target (it ignored ``logprob_token_ids``, as servers other than vLLM do)."""
    firsts: list[tuple[dict[str, float], str, float]] = []
    for choice in choices:
        logprobs = _field(choice, "logprobs")
        tops, tokens, values = (_field(logprobs, k) for k in ("top_logprobs", "tokens", "token_logprobs"))
        if not tops or not tops[0] or not tokens or values is None or values[0] is None:
            return None
        firsts.append((tops[0], tokens[0], values[0]))
    out = []
    for row in plan.steps:
        total, greedy = 0.0, True
        for k, target in row:
            top, sampled, sampled_lp = firsts[k]
            lp = top.get(f"token_id:{target}")
            if lp is None:
                return None
            total += lp
            greedy = greedy and (sampled == f"token_id:{target}" or lp >= sampled_lp - 1e-6)
        out.append((total, greedy))
    return out
