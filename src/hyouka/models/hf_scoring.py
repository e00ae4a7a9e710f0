"""Log-likelihood scoring: naive (one full pass per request) and shared-prefix (context run once).

Only the positions that predict continuation tokens are projected to the vocabulary
(``logits_to_keep``) and only they are log-softmaxed, in fp32; nothing of shape
``[batch, time, vocab]`` over whole sequences is ever built.

Naive: left-padded full sequences, one row per request.

Shared prefix: requests with the same context tokens (same text, same truncation) form a group.
Inside one batch of groups, the longest common prefix of the group contexts (the *trunk*, e.g. a
fixed few-shot block) runs once with batch 1 and is remembered for the next batch. Every request
then only needs its *tail*: its tokens from its last stable context token to the end. The last
stable context token is the last one the joint encoding shares with the context encoded alone,
capped one before the continuation start so the tail yields the first continuation logit; when a
token merges across the boundary the tail just starts earlier (only that tail is recomputed).

* packed (models with SDPA or eager attention): one row per group holds the group's remaining
  context followed by all its members' tails, on top of the trunk's cached keys/values, under a
  custom 4D mask: a context token sees the trunk and the context before it, a tail token sees the
  context before its stable point and the earlier tokens of its own tail. One pass per batch.
* rows (other attention implementations): the groups' remaining contexts run in one pass, their
  cache rows are copied to one row per member, and the tails run on top with 2D masks that hide
  the slots a member does not share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hyouka.models.hf_forward import Forward, cache_from, cache_tensors
from hyouka.models.hf_tokens import EncodedPair, common_prefix_len

Score = tuple[float, bool]


@dataclass
class Group:
    """Requests sharing one context: ``ref`` is the context's tokens, ``stable[i]`` each member's shared part."""

    ref: list[int]
    members: list[int]
    stable: list[int]
    prefix: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = self.ref[: max(self.stable, default=0)]


def stable_prefix(pair: EncodedPair) -> int:
    """How many leading tokens of ``pair.ids`` can come from its group's cache (< ``cont_start``)."""
    k = pair.cont_start
    if len(pair.ref) >= k and pair.ids[:k] == pair.ref[:k]:
        return k - 1
    return min(common_prefix_len(pair.ids[:k], pair.ref), k - 1)


def build_groups(pairs: Sequence[EncodedPair], indices: Sequence[int]) -> list[Group]:
    """Group requests by identical context tokens (same context text and same truncation)."""
    by_ref: dict[tuple[int, ...], list[int]] = {}
    for i in indices:
        by_ref.setdefault(tuple(pairs[i].ref), []).append(i)
    return [Group(list(ref), members, [stable_prefix(pairs[i]) for i in members]) for ref, members in by_ref.items()]


def tail_pass(
    fwd: Forward,
    pairs: Sequence[EncodedPair],
    starts: Sequence[int],
    cache: Any = None,
    cache_mask: Any = None,
) -> list[Score]:
    """Feed ``ids[start:-1]`` of each pair (on top of ``cache``) and score its continuation tokens."""
    torch = fwd.torch
    tails = [p.ids[s:-1] for p, s in zip(pairs, starts, strict=True)]
    ids, valid, positions = fwd.left_pad(tails, starts)
    mask = valid if cache_mask is None else torch.cat([cache_mask, valid], dim=1)
    n_cont = torch.tensor([p.n_cont for p in pairs], device=fwd.device)
    keep = int(n_cont.max())
    logits = fwd(ids, mask.long(), positions, cache, keep=keep)
    chosen = logits[torch.arange(keep, device=fwd.device)[None, :] >= (keep - n_cont)[:, None]]
    targets = [t for p in pairs for t in p.ids[p.cont_start :]]
    return _gather_scores(chosen, targets, n_cont.tolist(), fwd.device)


def score_naive(fwd: Forward, pairs: Sequence[EncodedPair]) -> list[Score]:
    """One full pass per request (left-padded batch)."""
    return tail_pass(fwd, pairs, [0] * len(pairs))


class TrunkMemo:
    """The keys/values of the last trunk (batch 1), reused by the next batch when it shares a prefix."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.tensors: list[tuple[Any, Any]] = []

    def get(self, fwd: Forward, trunk: list[int]) -> list[tuple[Any, Any]]:
        """Per-layer ``(keys, values)`` of ``trunk``, computing only what the remembered trunk lacks."""
        torch = fwd.torch
        have = common_prefix_len(self.ids, trunk)
        if have == len(trunk):
            return [(k[:, :, :have], v[:, :, :have]) for k, v in self.tensors]
        cache = cache_from(fwd, self.tensors, 1, have) if have else fwd.new_cache()
        rest = torch.tensor([trunk[have:]], device=fwd.device)
        mask = torch.ones((1, len(trunk)), dtype=torch.long, device=fwd.device)
        positions = torch.arange(have, len(trunk), device=fwd.device)[None, :]
        fwd(rest, mask, positions, cache, keep=1)
        self.ids, self.tensors = list(trunk), cache_tensors(cache)
        return self.tensors


def score_shared(fwd: Forward, pairs: Sequence[EncodedPair], groups: Sequence[Group], memo: TrunkMemo) -> list[Score]:
    """Score all members of ``groups`` (one batch); results follow the order of the groups' members."""
    trunk_len = min(len(g.prefix) for g in groups)
    first = groups[0].prefix
    for g in groups[1:]:
        trunk_len = common_prefix_len(first[:trunk_len], g.prefix)
    tensors = memo.get(fwd, first[:trunk_len]) if trunk_len else []
    if fwd.mask_kind is not None:
        return _packed_pass(fwd, pairs, groups, trunk_len, tensors)
    return _rows_pass(fwd, pairs, groups, trunk_len, tensors)


_NEVER = 1 << 30  # context index of slots no context position may see (tails, padding)


def _packed_pass(
    fwd: Forward, pairs: Sequence[EncodedPair], groups: Sequence[Group], trunk_len: int, tensors: list
) -> list[Score]:
    """One row per group: its remaining context, then every member's tail, under a 4D mask.

    A context token sees the trunk and the context before it; a tail token sees the context
    slots before its member's stable prefix and the earlier tokens of its own tail.
    """
    torch = fwd.torch
    dev = fwd.device
    rows: list[tuple[list[int], ...]] = []
    picks: list[tuple[int, int]] = []  # (row, index in the unpadded row) of each scored position
    targets: list[int] = []
    n_cont: list[int] = []
    for gi, g in enumerate(groups):
        rest = g.prefix[trunk_len:]
        ctx = list(range(trunk_len, trunk_len + len(rest)))
        toks, pos, seg, kctx, limit = list(rest), list(ctx), [-1] * len(rest), list(ctx), list(ctx)
        for i, (m, start) in enumerate(zip(g.members, g.stable, strict=True)):
            pair = pairs[m]
            tail = pair.ids[start:-1]
            first_pick = len(toks) + len(tail) - pair.n_cont
            picks.extend((gi, first_pick + j) for j in range(pair.n_cont))
            targets.extend(pair.ids[pair.cont_start :])
            n_cont.append(pair.n_cont)
            toks += tail
            pos += range(start, start + len(tail))
            seg += [i] * len(tail)
            kctx += [_NEVER] * len(tail)
            limit += [start - 1] * len(tail)
        rows.append((toks, pos, seg, kctx, limit))
    width = max(len(r[0]) for r in rows)

    def padded(field: int, fill: int) -> Any:
        out = torch.full((len(rows), width), fill, dtype=torch.long)
        for i, row in enumerate(rows):
            if row[field]:
                out[i, width - len(row[field]) :] = torch.tensor(row[field], dtype=torch.long)
        return out.to(dev)

    ids, positions = padded(0, fwd.pad_id), padded(1, 0)
    seg, kctx, limit = padded(2, -2), padded(3, _NEVER), padded(4, -1)
    g = len(rows)
    key_ctx = torch.cat([torch.arange(trunk_len, device=dev).expand(g, -1), kctx], dim=1)
    key_seg = torch.cat([torch.full((g, trunk_len), -3, device=dev), seg], dim=1)
    q_idx = torch.arange(width, device=dev)
    k_idx = torch.cat([torch.full((trunk_len,), _NEVER, device=dev), q_idx])
    causal = k_idx[None, None, :] <= q_idx[None, :, None]
    allowed = key_ctx[:, None, :] <= limit[:, :, None]
    allowed |= (key_seg[:, None, :] == seg[:, :, None]) & (seg[:, :, None] >= 0) & causal
    allowed |= (seg[:, :, None] == -2) & (k_idx[None, None, :] == q_idx[None, :, None])  # padding sees itself
    cache = cache_from(fwd, tensors, g) if tensors else None
    keep = max(len(rows[gi][0]) - p for gi, p in dict(reversed(picks)).items())  # from each row's first pick
    logits = fwd(ids, fwd.mask_4d(allowed), positions, cache, keep=keep)
    row_index = torch.tensor([gi for gi, _ in picks], device=dev)
    col_index = torch.tensor([keep - (len(rows[gi][0]) - p) for gi, p in picks], device=dev)
    return _gather_scores(logits[row_index, col_index], targets, n_cont, dev)


def _gather_scores(chosen: Any, targets: list[int], n_cont: list[int], device: Any) -> list[Score]:
    """fp32 log-softmax over the chosen positions only; sum per request; greedy check."""
    import torch

    logprobs = chosen.float().log_softmax(dim=-1)
    target = torch.tensor(targets, device=device)
    token_lp = logprobs.gather(1, target[:, None]).squeeze(1)
    greedy = logprobs.argmax(dim=-1) == target
    return [
        (float(lp.double().sum()), bool(gr.all()))
        for lp, gr in zip(token_lp.split(n_cont), greedy.split(n_cont), strict=True)
    ]


def _rows_pass(
    fwd: Forward, pairs: Sequence[EncodedPair], groups: Sequence[Group], trunk_len: int, tensors: list
) -> list[Score]:
    """Fallback without 4D masks: group contexts in one pass, then one cached row per member."""
    torch = fwd.torch
    dev = fwd.device
    rests = [g.prefix[trunk_len:] for g in groups]
    width = max(len(r) for r in rests)
    cache = cache_from(fwd, tensors, len(groups)) if tensors else fwd.new_cache()
    # context index held by each group slot (negative: padding)
    lengths = torch.tensor([len(r) for r in rests], device=dev)
    slot_ctx = trunk_len + torch.arange(width, device=dev)[None, :] - (width - lengths)[:, None]
    if width:
        ids, valid, positions = fwd.left_pad(rests, [trunk_len] * len(groups))
        trunk_mask = torch.ones((len(groups), trunk_len), dtype=torch.bool, device=dev)
        fwd(ids, torch.cat([trunk_mask, valid], dim=1).long(), positions, cache, keep=1)

    rows = [(gi, m, s) for gi, g in enumerate(groups) for m, s in zip(g.members, g.stable, strict=True)]
    row_group = torch.tensor([gi for gi, _, _ in rows], device=dev)
    stable = torch.tensor([s for _, _, s in rows], device=dev)
    if trunk_len or width:
        cache.batch_select_indices(row_group)
        row_slots = slot_ctx[row_group]
        cache_mask = torch.cat(
            [
                torch.arange(trunk_len, device=dev)[None, :] < stable[:, None],
                (row_slots >= trunk_len) & (row_slots < stable[:, None]),
            ],
            dim=1,
        )
    else:
        cache, cache_mask = None, None
        stable = torch.zeros_like(stable)
    return tail_pass(fwd, [pairs[m] for _, m, _ in rows], stable.tolist(), cache, cache_mask)
