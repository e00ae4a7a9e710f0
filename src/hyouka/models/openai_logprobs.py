"""Read a continuation's log-likelihood from ``/completions`` prompt log-probabilities (``echo=True``).

The prompt is sent as token ids, so the answer's ``token_logprobs[i]`` belongs to the ``i``-th id
sent: the continuation is found by position, never by ``text_offset`` (servers such as vLLM count
the decoded BOS in the offsets and lose characters where byte-level BPE splits a character).
"""

from __future__ import annotations

from typing import Any

from hyouka.models.base import UnsupportedRequestError


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
