"""Load price tables (YAML) and find the price of a model.

A table maps model specs, bare names or shell-style patterns to a :class:`Price`. Tables
stack: a user's file is consulted before the packaged defaults, and within one file an
exact key wins over a pattern (patterns are tried in file order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hyouka.yamlio import load_yaml

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")
_PATTERN_CHARS = set("*?[")


class PricingError(ValueError):
    """A price file that cannot be read or is invalid."""


class Price(BaseModel):
    """USD per million prompt/completion tokens, and/or per GPU-hour of measured call time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float | None = Field(default=None, ge=0)
    output: float | None = Field(default=None, ge=0)
    gpu_hour: float | None = Field(default=None, ge=0)
    gpus: int = Field(default=1, ge=1)

    @property
    def per_token(self) -> bool:
        return self.input is not None or self.output is not None

    def call_cost(
        self, prompt_tokens: int | None, completion_tokens: int | None, latency_s: float | None
    ) -> float | None:
        """Cost of one call in USD; ``None`` when a quantity the price needs is unknown."""
        total = 0.0
        if self.per_token:
            if (self.input and prompt_tokens is None) or (self.output and completion_tokens is None):
                return None
            total += (prompt_tokens or 0) * (self.input or 0.0) / 1e6
            total += (completion_tokens or 0) * (self.output or 0.0) / 1e6
        if self.gpu_hour is not None:
            if latency_s is None:
                return None
            total += self.gpu_hour * self.gpus * latency_s / 3600.0
        return total


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = ""
    currency: str = "USD"
    models: dict[str, Price]


@dataclass(frozen=True)
class PriceMatch:
    """The entry a model matched, and where it came from."""

    key: str
    price: Price
    source: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "source": self.source, "version": self.version, **self.price.model_dump()}


@dataclass
class PriceTable:
    """Layers of ``{key: Price}``, consulted in order."""

    layers: list[tuple[str, str, dict[str, Price]]] = field(default_factory=list)

    def lookup(self, model: str, identity: dict[str, Any] | None = None) -> PriceMatch | None:
        """The price of a model spec (``openai:gpt-4o-mini``), its bare name, or its identity's name."""
        names = _candidates(model, identity or {})
        for source, version, entries in self.layers:
            for key, price in entries.items():
                if not (_PATTERN_CHARS & set(key)) and key in names:
                    return PriceMatch(key, price, source, version)
            for key, price in entries.items():
                if _PATTERN_CHARS & set(key) and any(fnmatchcase(n, key) for n in names):
                    return PriceMatch(key, price, source, version)
        return None

    def with_layer(self, path: str | Path) -> PriceTable:
        """A new table that consults ``path`` before this one."""
        return PriceTable([_read(Path(path)), *self.layers])


def _candidates(model: str, identity: dict[str, Any]) -> list[str]:
    names = [model]
    _, sep, bare = model.partition(":")
    if sep:
        names.append(bare)
    for key in ("model", "name"):
        value = identity.get(key)
        if isinstance(value, str) and value not in names:
            names.append(value)
    return names


def _read(path: Path) -> tuple[str, str, dict[str, Price]]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PricingError(f"cannot read price file {path}: {exc}") from exc
    try:
        parsed = _PriceFile.model_validate(data)
    except ValidationError as exc:
        raise PricingError(f"price file {path} is invalid:\n{exc}") from exc
    if parsed.currency.upper() != "USD":
        raise PricingError(f"price file {path}: only USD prices are supported, got {parsed.currency!r}")
    return str(path), parsed.version, parsed.models


@lru_cache
def _default_layer() -> tuple[str, str, dict[str, Price]]:
    _, version, entries = _read(DEFAULT_PRICES)
    return "hyouka default prices", version, entries


def default_prices() -> PriceTable:
    """The packaged table, under the file named by ``HYOUKA_PRICES`` when set."""
    table = PriceTable([_default_layer()])
    env = os.environ.get("HYOUKA_PRICES")
    return table.with_layer(Path(env).expanduser()) if env else table


def load_prices(path: str | Path | PriceTable | None = None) -> PriceTable:
    """The default table, with ``path`` (a user's YAML file) consulted first."""
    if isinstance(path, PriceTable):
        return path
    table = default_prices()
    return table.with_layer(Path(path).expanduser()) if path else table
