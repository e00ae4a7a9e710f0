"""Prompt tokens, their log-probabilities and their JSON, the way vLLM's ``/v1/completions`` answers ``echo``.

What the test server mimics of vLLM (0.32, checked against its real answers):

* a text prompt is tokenized with the special tokens (BOS in front); a prompt of token ids is
  taken as it is;
* the echoed ``tokens`` are decoded one by one: the BOS shows as its text (``"<s>"``) and a token
  ending inside a multi-byte character is decoded with up to 4 tokens before it, or as ``""`` when
  the character stays unfinished, so ``トランペット`` comes back as ``"トラ", "", "�ット"``;
* ``text_offset`` is the running length of those strings (the BOS counts), not a position in the
  prompt;
* ``prompt_logprobs`` lists, per position, ``{token id: {logprob, rank, decoded_token}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
CONTEXT_TOKENS = 4  # enough for any UTF-8 sequence


class NoPromptLogprobs(Exception):
    """The served backend cannot score prompt tokens one by one."""


class CharTokenizer:
    """One token per character (id ``ord(ch) + 3``) after a BOS (id 1, ``"<s>"``): the tokenizer of ``EchoModel``."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0
    bos_token = "<s>"
    OFFSET = 3

    def __call__(self, text: str, add_special_tokens: bool = True, **_: Any) -> dict[str, list[int]]:
        ids = [ord(ch) + self.OFFSET for ch in text]
        return {"input_ids": [self.bos_token_id, *ids] if add_special_tokens else ids}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        names = {self.bos_token_id: "<s>", self.eos_token_id: "</s>", self.pad_token_id: "<pad>"}
        return "".join(
            ("" if skip_special_tokens else names[i]) if i in names else chr(i - self.OFFSET) for i in ids
        )


@dataclass(frozen=True)
class ScoredToken:
    """A prompt token with its log-probability, rank and the best alternatives (None for the first token)."""

    token_id: int
    logprob: float | None
    rank: int | None
    top: dict[int, float] | None
    extra: frozenset[int] = frozenset()  # ids asked for by ``logprob_token_ids``, shown beyond the top


def served_tokenizer(backend: Any) -> Any:
    """The tokenizer the server uses for ``backend``: its Hugging Face tokenizer, or characters for EchoModel."""
    from hyouka.testing.openai_server import EchoModel

    if isinstance(backend, EchoModel):
        return CharTokenizer()
    return getattr(backend, "tokenizer", None)


def score_ids(backend: Any, tokenizer: Any, ids: Sequence[int], top_n: int) -> list[ScoredToken]:
    """Log-probability of every token of ``ids`` given those before it (the first is unscored)."""
    from hyouka.testing.openai_server import EchoModel, char_logprob

    if not ids:
        return []
    if isinstance(backend, EchoModel):
        out = [ScoredToken(ids[0], None, None, None)]
        other = ord("の") + CharTokenizer.OFFSET
        for tid in ids[1:]:
            lp = char_logprob(tokenizer.decode([tid]))
            best = lp == -1.0
            out.append(ScoredToken(tid, lp, 1 if best else 2, {tid: lp} if best else {other: -1.0, tid: lp}))
        return out
    if hasattr(backend, "model") and tokenizer is not None:
        return _hf_scores(backend.model, ids, top_n)
    raise NoPromptLogprobs(f"backend {type(backend).__name__} cannot score prompt tokens")


def next_token(backend: Any, tokenizer: Any, ids: Sequence[int], top_n: int, extra: Sequence[int]) -> ScoredToken:
    """The greedy next token after ``ids``, with the best ``top_n`` and the ``extra`` ids (``logprob_token_ids``).

    EchoModel's toy distribution is the same at every position: ``"の"`` is the most likely (-1.0).
    """
    from hyouka.testing.openai_server import EchoModel, char_logprob

    if isinstance(backend, EchoModel):
        best = ord("の") + CharTokenizer.OFFSET
        top = {best: -1.0, **{t: char_logprob(tokenizer.decode([t])) for t in extra}}
        return ScoredToken(best, -1.0, 1, top, frozenset(extra))
    if hasattr(backend, "model") and tokenizer is not None:
        logp = _hf_logp(backend.model, ids)[-1]
        values, best_ids = logp.topk(max(top_n, 1))
        top = {int(t): float(v) for t, v in zip(best_ids, values, strict=True)}
        top.update({int(t): float(logp[int(t)]) for t in extra})
        return ScoredToken(int(best_ids[0]), float(values[0]), 1, top, frozenset(extra))
    raise NoPromptLogprobs(f"backend {type(backend).__name__} cannot score tokens")


def _hf_logp(lm: Any, ids: Sequence[int]) -> Any:
    import torch

    device = getattr(lm, "device", "cpu")
    with torch.inference_mode():
        logits = lm(torch.tensor([list(ids)], device=device)).logits[0].float()
        return torch.log_softmax(logits, dim=-1)


def _hf_scores(lm: Any, ids: Sequence[int], top_n: int) -> list[ScoredToken]:
    logp = _hf_logp(lm, ids)
    top_vals, top_ids = logp.topk(max(top_n, 1), dim=-1)
    out = [ScoredToken(int(ids[0]), None, None, None)]
    for i in range(1, len(ids)):
        row, tid = logp[i - 1], int(ids[i])
        lp = float(row[tid])
        top = {int(t): float(v) for t, v in zip(top_ids[i - 1], top_vals[i - 1], strict=True)}
        out.append(ScoredToken(tid, lp, int((row > lp).sum()) + 1, top))
    return out


def vllm_token_strings(decode: Callable[[list[int]], str], ids: Sequence[int], context: Sequence[int]) -> list[str]:
    """How vLLM shows the tokens ``ids`` that stand at one position after ``context`` (the prompt before it)."""
    out = []
    for tid in ids:
        text = decode([tid])
        if text.endswith(REPLACEMENT):
            text = _finish_character(decode, tid, list(context[-CONTEXT_TOKENS:]))
        out.append(text)
    return out


def _finish_character(decode: Callable[[list[int]], str], tid: int, context: list[int]) -> str:
    """The text ``tid`` completes together with the tokens before it, or ``""`` while still unfinished."""
    for n in range(1, len(context) + 1):
        before = context[-n:]
        full = decode([*before, tid])
        if full.endswith(REPLACEMENT):
            continue
        clean = len(before)
        while clean > 0 and decode([before[clean - 1]]).endswith(REPLACEMENT):
            clean -= 1
        prefix = decode(before[:clean]) if clean else ""
        if full.startswith(prefix):
            return full[len(prefix) :]
        same = next((i for i, (a, b) in enumerate(zip(prefix, full, strict=False)) if a != b), len(prefix))
        return full[same:]
    return ""


def completion_logprobs(
    tokenizer: Any, scored: Sequence[ScoredToken], top_n: int, *, first: int = 0, as_ids: bool = False
) -> tuple[dict[str, Any], list[Any]]:
    """The ``logprobs`` object (from position ``first`` on) and the ``prompt_logprobs`` list of an answer.

    ``as_ids`` shows tokens as ``"token_id:N"`` (vLLM's ``return_tokens_as_token_ids``).
    """

    def decode(ids: list[int]) -> str:
        return f"token_id:{ids[-1]}" if as_ids else tokenizer.decode(ids)

    ids = [s.token_id for s in scored]
    tokens, logprobs, tops, offsets, prompt = [], [], [], [], []
    length = 0
    for i, s in enumerate(scored):
        if s.logprob is None or s.top is None:
            text = decode([s.token_id])
            entry_top, entry_prompt = None, None
        else:
            ranked = sorted((t for t in s.top if t != s.token_id), key=lambda t: -s.top[t])  # type: ignore[index]
            alternatives = [s.token_id, *ranked[:top_n], *(t for t in ranked[top_n:] if t in s.extra)]
            strings = vllm_token_strings(decode, alternatives, ids[:i])
            text = strings[0]
            values = {t: (s.logprob if t == s.token_id else s.top[t]) for t in alternatives}
            entry_top = {string: values[t] for t, string in zip(alternatives, strings, strict=True)}
            ranks = {t: s.rank if t == s.token_id else 1 + sum(v > values[t] for v in s.top.values())
                     for t in alternatives}
            entry_prompt = {
                str(t): {"logprob": values[t], "rank": ranks[t], "decoded_token": string}
                for t, string in zip(alternatives, strings, strict=True)
            }
        prompt.append(entry_prompt)
        if i >= first:
            tokens.append(text)
            logprobs.append(s.logprob)
            tops.append(entry_top)
            offsets.append(length)
        length += len(text)
    body = {"text_offset": offsets, "token_logprobs": logprobs, "tokens": tokens, "top_logprobs": tops}
    return body, prompt
