"""Batched decoding with left padding, per-row stopping and row compaction.

Each row decodes greedily (temperature 0) or samples with its own seeded generator, so its text
does not depend on which other rows share the batch. A row stops on EOS, on one of its stop
strings (its text is cut at the first one) or after ``max_tokens``; the batch ends when every row
has stopped. Finished rows are dropped from the batch (their cache rows with them) once they make
up a quarter of it: copying the cache once is cheaper than carrying dead rows through every step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hyouka.models.base import GenerationParams
from hyouka.models.hf_forward import Forward

COMPACT_FRACTION = 4  # compact when at least 1/COMPACT_FRACTION of the live batch has finished


@dataclass
class Generated:
    text: str
    finish_reason: str
    completion_tokens: int


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Truncate ``text`` at the earliest occurrence of any stop string."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class _Row:
    def __init__(self, params: GenerationParams, torch: Any, device: Any) -> None:
        self.params = params
        self.tokens: list[int] = []
        self.done = params.max_tokens <= 0
        self.reason = "length"
        self.generator = None
        if params.temperature > 0:
            self.generator = torch.Generator(device=device)
            seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(6), "little")
            self.generator.manual_seed(seed)


def _sample(torch: Any, logits: Any, row: _Row) -> int:
    params = row.params
    probs = (logits / params.temperature).softmax(dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > params.top_p
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=row.generator))


def generate_batch(
    fwd: Forward,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    params: Sequence[GenerationParams],
    eos_ids: set[int],
) -> list[Generated]:
    """Decode one batch of tokenised prompts."""
    torch = fwd.torch
    rows = [_Row(p, torch, fwd.device) for p in params]
    live = [i for i, r in enumerate(rows) if not r.done]  # original row of each batch row
    if live:
        _decode(fwd, tokenizer, [prompts[i] for i in live], [rows[i] for i in live], eos_ids)
    out = []
    for row in rows:
        text = tokenizer.decode(row.tokens, skip_special_tokens=True)
        text, hit = cut_at_stop(text, row.params.stop)
        out.append(Generated(text, "stop" if hit else row.reason, len(row.tokens)))
    return out


def _decode(fwd: Forward, tokenizer: Any, prompts: Sequence[list[int]], rows: list[_Row], eos_ids: set[int]) -> None:
    torch = fwd.torch
    ids, valid, positions = fwd.left_pad(prompts, [0] * len(prompts))
    mask = valid.long()
    cache = fwd.new_cache()
    alive = list(range(len(rows)))
    logits = fwd(ids, mask, positions, cache, keep=1)[:, -1].float()
    next_pos = positions[:, -1:] + 1
    while True:
        chosen = logits.argmax(dim=-1).tolist()
        step = []
        for b, r in enumerate(alive):
            row = rows[r]
            if row.done:
                step.append(fwd.pad_id)
                continue
            tok = _sample(torch, logits[b], row) if row.generator is not None else chosen[b]
            row.tokens.append(tok)
            step.append(tok)
            if tok in eos_ids:
                row.tokens.pop()
                row.done, row.reason = True, "stop"
            elif row.params.stop and _hit_stop(tokenizer, row):
                row.done, row.reason = True, "stop"
            elif len(row.tokens) >= row.params.max_tokens:
                row.done = True
        dead = [b for b, r in enumerate(alive) if rows[r].done]
        if len(dead) == len(alive):
            return
        if len(dead) * COMPACT_FRACTION >= len(alive):
            keep = [b for b, r in enumerate(alive) if not rows[r].done]
            index = torch.tensor(keep, device=fwd.device)
            cache.batch_select_indices(index)
            mask, next_pos = mask[index], next_pos[index]
            step = [step[b] for b in keep]
            alive = [alive[b] for b in keep]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        inputs = torch.tensor(step, device=fwd.device)[:, None]
        logits = fwd(inputs, mask, next_pos, cache, keep=1)[:, -1].float()
        next_pos = next_pos + 1


def _hit_stop(tokenizer: Any, row: _Row) -> bool:
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    return cut_at_stop(text, row.params.stop)[1]
