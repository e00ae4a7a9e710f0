"""Model calls with explicit padding masks and positions, and key/value cache plumbing.

Every pass feeds ``input_ids`` with a 2D attention mask that covers the cached slots plus the new
ones and explicit ``position_ids``, so rows can be left-padded and cached prefixes can have masked
gaps: a padded slot is never attended to and positions count real tokens only.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any


class CacheReuseUnsupported(RuntimeError):
    """The model's key/value cache cannot be copied between rows (shared-prefix scoring is off)."""


class Forward:
    """A causal LM plus the few facts needed to call it directly."""

    def __init__(self, model: Any, device: Any, pad_id: int) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.device = device
        self.pad_id = pad_id
        params = inspect.signature(model.forward).parameters
        self.keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        # the key/value cache argument: `cache` since transformers 5.2x, `past_key_values` before (deprecated
        # in 5.24 with a FutureWarning on every call, removed in 5.40)
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        #: whether rows can carry explicit positions (needed for padding gaps and packed rows)
        self.positions_ok = "position_ids" in params
        attn = getattr(model.config, "_attn_implementation", None)
        #: how a custom 4D attention mask must be written for this model (None: not supported)
        self.mask_kind: str | None = {"sdpa": "bool", "eager": "float"}.get(attn or "")
        if not self.positions_ok or _has_local_attention(model.config):
            self.mask_kind = None

    def __call__(self, ids: Any, mask: Any, positions: Any, cache: Any = None, keep: int = 1) -> Any:
        """Run one pass; return logits for the last ``keep`` positions ``[batch, keep, vocab]``."""
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "use_cache": cache is not None}
        if self.positions_ok:
            kwargs["position_ids"] = positions
        if cache is not None:
            kwargs[self.cache_kw] = cache
        if self.keep_kw is not None:
            kwargs[self.keep_kw] = keep
        logits = self.model(**kwargs).logits
        return logits[:, -keep:] if keep > 0 else logits

    def mask_4d(self, allowed: Any) -> Any:
        """Turn a boolean ``[batch, query, key]`` "may attend" tensor into the model's 4D mask."""
        allowed = allowed[:, None]
        if self.mask_kind == "bool":
            return allowed
        dtype = self.model.dtype
        return self.torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
            ~allowed, self.torch.finfo(dtype).min
        )

    def new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def left_pad(self, rows: Sequence[Sequence[int]], starts: Sequence[int]) -> tuple[Any, Any, Any]:
        """Left-pad token rows; return ``(ids, valid, positions)``, positions counting from ``starts``."""
        torch = self.torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        valid = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                valid[i, width - len(row) :] = True
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        base = torch.tensor(list(starts), dtype=torch.long) - (width - lengths)
        positions = (base[:, None] + torch.arange(width)[None, :]).clamp_(min=0)
        return ids.to(self.device), valid.to(self.device), positions.to(self.device)


def _has_local_attention(config: Any) -> bool:
    """Sliding-window or other non-global attention layers (custom 4D masks would bypass them)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layer_types = getattr(text, "layer_types", None)
    if layer_types:
        return any(t != "full_attention" for t in layer_types)
    return bool(getattr(text, "sliding_window", None)) and getattr(text, "use_sliding_window", True) is not False


def cache_tensors(cache: Any) -> list[tuple[Any, Any]]:
    """The per-layer ``(keys, values)`` of a plain dynamic cache, or raise ``CacheReuseUnsupported``."""
    layers = getattr(cache, "layers", None)
    if not layers:
        raise CacheReuseUnsupported("the model's cache has no per-layer key/value tensors")
    out = []
    for layer in layers:
        if type(layer).__name__ != "DynamicLayer" or getattr(layer, "keys", None) is None:
            raise CacheReuseUnsupported(f"cache layer {type(layer).__name__} cannot be shared between rows")
        out.append((layer.keys, layer.values))
    return out


def cache_from(fwd: Forward, tensors: Sequence[tuple[Any, Any]], rows: int, length: int | None = None) -> Any:
    """A fresh cache holding ``tensors`` (batch 1) repeated over ``rows`` rows, cut to ``length`` slots."""
    cache = fwd.new_cache()
    for i, (k, v) in enumerate(tensors):
        if length is not None:
            k, v = k[:, :, :length], v[:, :, :length]
        cache.update(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1), i)
    return cache
