"""Model and judge backends for evaluations: specs loaded once, with the names runs record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyouka.engine.budget import MeteredModel
from hyouka.engine.cache import ResponseCache
from hyouka.models.base import Model
from hyouka.models.registry import check_ready, load_model

__all__ = ["open_cache", "resolve_model", "spec_name"]


def spec_name(model: str | Model) -> str:
    """The name a run records for a model: its spec (a metered backend's too), or ``<Backend>:<name>`` for a
    built backend."""
    if isinstance(model, str):
        return model
    if isinstance(model, MeteredModel):
        return model.spec or spec_name(model.inner)
    return f"{type(model).__name__}:{model.name}"


def resolve_model(model: str | Model, options: dict[str, Any] | None = None) -> Model:
    """A backend from a spec (``options`` go to it) or the backend itself."""
    backend = load_model(model, **(options or {})) if isinstance(model, str) else model
    check_ready(backend)  # e.g. no API key: refused before any row is planned
    return backend


def open_cache(cache: ResponseCache | str | Path | bool) -> ResponseCache | None:
    """The response cache: the default one (``True``), none (``False``), a path, or one given."""
    if cache is False:
        return None
    if cache is True:
        from hyouka.config import cache_path

        return ResponseCache(cache_path())
    return cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
