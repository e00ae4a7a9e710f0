"""Read a continuation's log-likelihood from ``/completions`` prompt log-probabilities (``echo=True``)."""

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


def continuation_logprob(logprobs: Any, context: str, continuation: str) -> tuple[float, bool | None]:
    """Sum the log-probabilities of the continuation's tokens; say whether each was the most likely one.

    Tokens are placed by their ``text_offset`` in ``context + continuation``.
    The continuation's tokens are those that cover at least one of its
    characters: the tokens starting inside it and, when the server merged
    the last context characters with the first continuation characters into
    one token (no token starts exactly at the boundary), that merged token
    too, as the ``hf`` backend counts it. A zero-width first token without a
    log-probability (BOS) is skipped. ``is_greedy`` is None when
    ``top_logprobs`` are missing.
    """
    tokens = _field(logprobs, "token_logprobs")
    offsets = _field(logprobs, "text_offset")
    if not tokens or not offsets or len(tokens) != len(offsets) or all(t is None for t in tokens):
        raise PromptLogprobsUnavailableError(detail="the answer holds no token_logprobs with text_offset")
    tops = _field(logprobs, "top_logprobs") or [None] * len(tokens)
    start, end = len(context), len(context) + len(continuation)
    chosen = [i for i, offset in enumerate(offsets) if start <= offset < end]
    if continuation and start not in offsets:
        before = [offset for offset in offsets if offset < start]
        if before:
            chosen = [i for i, offset in enumerate(offsets) if offset == max(before)] + chosen
    total, greedy = 0.0, True
    for i in chosen:
        lp, top = tokens[i], tops[i] if i < len(tops) else None
        if lp is None:
            if i == 0 and offsets.count(offsets[0]) > 1:
                continue  # a zero-width BOS in front of the first real token
            raise ValueError(f"token {i} of the continuation has no log-probability (no context before it?)")
        total += lp
        if greedy is not None:
            greedy = None if not top else greedy and lp >= max(top.values()) - 1e-6
    return total, greedy


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
