"""Tokenisation for the ``hf`` backend: joint context+continuation encoding split at a verified boundary.

The boundary rule
-----------------
``context + continuation`` is encoded once, as one string, so the continuation is scored in the
tokenisation the model would really see. The continuation tokens are the tokens of that joint
encoding whose character span ends after ``len(context)``, i.e. every token that covers at least
one continuation character. Usually the first of them starts exactly at ``len(context)``. When the
tokenizer merges the last context characters with the first continuation characters into one
token, that merged token starts inside the context: it still belongs to the continuation (its full
log-probability is counted) and the continuation is conditioned on the tokens that lie wholly
inside the context. Special tokens the tokenizer adds in front (BOS) are context. With a slow
tokenizer (no offsets) the split falls back to the longest common prefix of the context encoded
alone and the joint encoding.

If the context is empty and the tokenizer adds nothing in front, BOS (else EOS) is prepended so the
first continuation token has something to be conditioned on, as lm-evaluation-harness does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ENCODE_CHUNK = 1024


@dataclass
class EncodedPair:
    """One log-likelihood request, tokenised.

    ``ids`` is the (left-truncated) joint sequence, ``cont_start`` the index of its first
    continuation token, ``ref`` the context encoded alone and truncated by the same ``dropped``
    number of leading tokens (the shared-prefix scorer runs it once per group), ``error`` set when
    the request cannot be scored.
    """

    ids: list[int]
    cont_start: int
    ref: list[int]
    dropped: int = 0
    error: str | None = None

    @property
    def n_cont(self) -> int:
        return len(self.ids) - self.cont_start


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def special_prefix(tokenizer: Any) -> list[int]:
    """The ids the tokenizer puts in front of any text by default (e.g. ``[bos]``), found by probing."""
    probe = "a"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    if not plain:
        return []
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start])
    return []


def start_token(tokenizer: Any) -> int | None:
    """The token to condition on when there is no context at all (BOS, else EOS)."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return None


def continuation_start(offsets: Sequence[tuple[int, int]], context_chars: int) -> int:
    """Index of the first token whose span ends after ``context_chars`` (see the module docstring)."""
    for i, (_, end) in enumerate(offsets):
        if end > context_chars:
            return i
    return len(offsets)


def encode_pairs(
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    prefix: Sequence[int],
    max_length: int,
) -> list[EncodedPair]:
    """Encode ``(context, continuation)`` pairs jointly and split them at the boundary.

    Sequences longer than ``max_length + 1`` tokens lose tokens from the left (the last token is
    never fed to the model, so ``max_length`` positions suffice), like lm-evaluation-harness.
    """
    contexts = sorted({c for c, _ in pairs})
    refs = {c: [*prefix, *ids] for c, ids in zip(contexts, _encode(tokenizer, contexts), strict=True)}
    start = start_token(tokenizer)
    out = []
    for lo in range(0, len(pairs), ENCODE_CHUNK):  # chunks keep the offsets' Python objects few
        chunk = pairs[lo : lo + ENCODE_CHUNK]
        joints = [c + x for c, x in chunk]
        if getattr(tokenizer, "is_fast", False):
            enc = tokenizer(
                joints, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False
            )
            offsets = enc["offset_mapping"]
            starts = [continuation_start(offs, len(c)) for (c, _), offs in zip(chunk, offsets, strict=True)]
            joint_ids = enc["input_ids"]
        else:
            joint_ids = _encode(tokenizer, joints)
            starts = [
                min(common_prefix_len(refs[c][len(prefix) :], ids), len(refs[c]) - len(prefix))
                for (c, _), ids in zip(chunk, joint_ids, strict=True)
            ]
        for (context, _), ids, k in zip(chunk, joint_ids, starts, strict=True):
            ids = [*prefix, *ids]
            k += len(prefix)
            ref = refs[context]  # shared between the pairs of one context, never mutated
            if k == 0:
                if start is None:
                    out.append(EncodedPair(ids, 0, [], error="empty context and the tokenizer has no BOS/EOS"))
                    continue
                ids, ref, k = [start, *ids], [start], 1
            out.append(_truncate(EncodedPair(ids, k, ref), max_length))
    return out


def _truncate(pair: EncodedPair, max_length: int) -> EncodedPair:
    if pair.n_cont > max_length:
        pair.error = f"continuation of {pair.n_cont} tokens does not fit the model's max length {max_length}"
        return pair
    drop = len(pair.ids) - (max_length + 1)
    if drop > 0:
        pair.ids = pair.ids[drop:]
        pair.ref = pair.ref[drop:]
        pair.cont_start -= drop
        pair.dropped = drop
    return pair


def _encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)
    return [list(x) for x in encoded["input_ids"]]


def encode_prompts(
    tokenizer: Any, prompts: Sequence[str], *, prefix: Sequence[int], room: Sequence[int], max_length: int
) -> list[list[int] | None]:
    """Encode generation prompts, left-truncated so ``room[i]`` new tokens fit; None if nothing fits."""
    out: list[list[int] | None] = []
    for ids, need in zip(_encode(tokenizer, prompts), room, strict=True):
        ids = list(prefix) + ids
        keep = max_length - need
        if keep < 1:
            out.append(None)
            continue
        if not ids:
            start = start_token(tokenizer)
            ids = [start] if start is not None else []
        out.append(ids[-keep:] if ids else None)
    return out
