"""Token-budget batching: sort work by length, fill batches up to a budget of padded token slots.

A *unit* is what must stay in one batch (one request, or one shared-prefix group of requests);
its cost is ``rows x length``. A batch costs ``total rows x longest length``, which bounds the
padded activations and key/value cache it needs. With a fixed ``batch_size`` the budget is
replaced by a cap on the number of requests per batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CPU_MIN_BUDGET = 1024
CPU_MAX_BUDGET = 32768


@dataclass(frozen=True)
class Unit:
    """``rows`` padded rows of ``length`` tokens serving ``count`` requests (default: one per row)."""

    rows: int
    length: int
    count: int = 0

    @property
    def requests(self) -> int:
        return self.count or self.rows


def plan_batches(units: Sequence[Unit], *, budget: int | None = None, max_rows: int | None = None) -> list[list[int]]:
    """Indices of ``units`` grouped into batches, longest first; every batch holds at least one unit.

    ``budget`` bounds padded token slots (rows x longest length), ``max_rows`` the requests per batch.
    """
    order = sorted(range(len(units)), key=lambda i: (-units[i].length, i))
    batches: list[list[int]] = []
    current: list[int] = []
    rows = width = count = 0
    for i in order:
        unit = units[i]
        new_rows, new_width, new_count = rows + unit.rows, max(width, unit.length), count + unit.requests
        too_big = (budget is not None and new_rows * new_width > budget) or (
            max_rows is not None and new_count > max_rows
        )
        if current and too_big:
            batches.append(current)
            current, new_rows, new_width, new_count = [], unit.rows, unit.length, unit.requests
        current.append(i)
        rows, width, count = new_rows, new_width, new_count
    if current:
        batches.append(current)
    return batches


def bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Rough memory per token slot: key/value cache plus a few hidden-size activations."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = int(getattr(text, "hidden_size", 1024))
    layers = int(getattr(text, "num_hidden_layers", 12))
    heads = int(getattr(text, "num_attention_heads", 16))
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or hidden // max(1, heads))
    kv = layers * 2 * kv_heads * head_dim * dtype_bytes
    activations = 16 * hidden * 4
    return kv + activations


def available_ram() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_budget(config: Any, dtype_bytes: int) -> int:
    """A sane CPU default: a tenth of the free RAM, clamped to [1024, 32768] token slots."""
    free = available_ram() or 8 << 30
    budget = int(free * 0.1 // bytes_per_token(config, dtype_bytes))
    return max(CPU_MIN_BUDGET, min(CPU_MAX_BUDGET, budget))
