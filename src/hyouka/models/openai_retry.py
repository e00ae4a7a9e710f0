"""When and how long to wait before sending an OpenAI-compatible request again."""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any

MAX_RETRY_AFTER_S = 300.0
RETRY_STATUSES = frozenset({408, 429})


class MalformedResponseError(ValueError):
    """A 200 answer that is not the JSON object its route promises (truncated JSON, an HTML page, no choices)."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified."""

    message: str
    error_type: str  # "api_error" or "timeout"
    retryable: bool
    status: int | None = None
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure:
    """Sort an exception from the ``openai`` client into retryable or not, timeout or API error.

    A malformed 200 answer (see :class:`MalformedResponseError`; the client raises a JSON
    decoding error for truncated JSON) is retried like a server error: proxies and
    overloaded servers send them now and then.
    """
    import openai

    if isinstance(exc, MalformedResponseError):
        return Failure(f"malformed response: {exc}", "api_error", True)
    if isinstance(exc, json.JSONDecodeError):
        return Failure(f"malformed response: the body is not valid JSON ({exc.msg} at line {exc.lineno} "
                       f"column {exc.colno})", "api_error", True)
    if isinstance(exc, openai.APITimeoutError):
        return Failure(f"request timed out: {exc}", "timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        return Failure(f"connection error: {exc}", "api_error", True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRY_STATUSES or status >= 500
        kind = "timeout" if status == 408 else "api_error"
        return Failure(f"HTTP {status}: {_message(exc)}", kind, retryable, status, retry_after(exc.response.headers))
    if isinstance(exc, openai.APIError):
        return Failure(f"{type(exc).__name__}: {exc}", "api_error", False)
    raise exc


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))


def retry_after(headers: Any) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms``, ``retry-after`` in seconds or as a date)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
    return None


def backoff(attempt: int, *, base_s: float, cap_s: float = 30.0, retry_after_s: float | None = None) -> float:
    """Delay before retry number ``attempt`` (0-based): the server's ``Retry-After`` plus up to 20%,
    else exponential backoff with jitter (between half and all of ``base_s * 2**attempt``, capped)."""
    if retry_after_s is not None:
        return retry_after_s * random.uniform(1.0, 1.2)
    return min(cap_s, base_s * 2**attempt) * random.uniform(0.5, 1.0)
