"""Lazy import of the optional ``hf`` extra (torch, transformers) with a clear error."""

from __future__ import annotations

HF_EXTRA_HINT = 'the hf backend needs torch and transformers: pip install "hyouka[hf]"'


class MissingDependencyError(ImportError):
    """An optional dependency of a backend is not installed."""


def require_hf() -> None:
    """Import torch and transformers, or raise ``MissingDependencyError`` naming the extra."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise MissingDependencyError(f"{HF_EXTRA_HINT} (missing: {missing})") from exc
