"""Keep secrets out of exports: drop credential-like keys and credentials inside URLs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_SECRET_KEY = re.compile(
    r"(^|[_\-.])(api[_\-]?key|apikey|access[_\-]?key|secret|password|passwd|token|auth|authorization|"
    r"credential|credentials|bearer|cookie)s?$",
    re.IGNORECASE,
)
_URL = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
REDACTED = "[redacted]"


def is_secret_key(key: str) -> bool:
    """``api_key``, ``OPENAI_API_KEY``, ``hf_token``, ``password``… but not ``max_tokens`` or ``api_key_env``."""
    lowered = key.lower()
    # a plural "tokens" is a count (max_tokens, prompt_tokens), never a credential
    return not lowered.endswith(("_env", "tokens")) and bool(_SECRET_KEY.search(key))


def clean_url(url: str) -> str:
    """A URL without user:password and without its query string (where keys are often passed)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys redacted and URLs cleaned, recursively."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str) and _URL.match(value):
        return clean_url(value)
    return value
