"""Turn a model spec such as ``hf:rinna/japanese-gpt-neox-3.6b`` into a backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyouka.models.base import Model

BackendFactory = Callable[..., Model]


def _hf(name: str, **options: Any) -> Model:
    if name.startswith(("/", "./", "../", "~", ".")) and not Path(name).expanduser().exists():
        raise UnknownModelError(f"hf: model folder {name} does not exist (a hub name has no leading / or .)")
    from hyouka.models.hf import HFModel

    return HFModel(str(Path(name).expanduser()) if name.startswith("~") else name, **options)


def _openai(name: str, **options: Any) -> Model:
    from hyouka.models.openai_api import OpenAIModel

    return OpenAIModel(name, **options)


def _recorded(name: str, **options: Any) -> Model:
    from hyouka.models.recorded import RecordedModel

    return RecordedModel(name, **options)


BACKENDS: dict[str, BackendFactory] = {
    "hf": _hf,
    "openai": _openai,
    "recorded": _recorded,
}


class UnknownModelError(ValueError):
    """The model spec names no known backend."""


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``prefix:name`` and check the prefix; the name may itself hold colons."""
    prefix, sep, name = spec.partition(":")
    if not sep or not name:
        raise UnknownModelError(
            f"model spec {spec!r} has no backend prefix; write it as <backend>:<name>, "
            f"with backend one of: {', '.join(sorted(BACKENDS))}"
        )
    if prefix not in BACKENDS:
        raise UnknownModelError(
            f"unknown model backend {prefix!r} in {spec!r}; known backends: {', '.join(sorted(BACKENDS))}"
        )
    return prefix, name


_SECRET_HINTS = ("key", "token", "secret", "password")


def recordable_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Backend options safe to store: names of secrets' variables are kept, values never.

    URLs lose their user info, query and fragment, where credentials hide.
    """
    from hyouka.models.openai_api import public_url

    return {
        k: public_url(v) if k.endswith("url") and isinstance(v, str) else v
        for k, v in (options or {}).items()
        if v is not None and (k.endswith("_env") or not any(h in k.lower() for h in _SECRET_HINTS))
    }


def check_ready(model: Model) -> None:
    """Raise if ``model`` cannot make calls yet (e.g. an OpenAI backend with no key); building a backend
    checks nothing that only calls need, so a dry run works without credentials."""
    check = getattr(model, "check_ready", None)
    if callable(check):
        check()


def load_model(spec: str, **options: Any) -> Model:
    """Build the backend a spec names; ``options`` go to the backend (None values are dropped)."""
    prefix, name = parse_spec(spec)
    kwargs = {k: v for k, v in options.items() if v is not None}
    factory = BACKENDS[prefix]
    try:
        return factory(name, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise UnknownModelError(f"option not supported by the {prefix!r} backend: {exc}") from exc
        raise
