"""JSON in and out for the hot paths (results store, response cache, data files).

orjson does the work: several times faster than the standard library on the
records a run writes. Values it cannot take (integers beyond 64 bits, unusual
types) go through the standard library instead, so nothing that encoded before
fails now. Both write NaN and infinities as null, which every database accepts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_STDLIB_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_STDLIB_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode

DecodeError = orjson.JSONDecodeError  # a json.JSONDecodeError: it has .msg, .lineno and .colno


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII characters as they are, NaN and infinities as null."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode("utf-8")
    except orjson.JSONEncodeError:
        return _STDLIB_ENCODE(_finite(value))


def canonical_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON with sorted keys: the stable form hashed into cache keys.

    It equals the standard library's ``sort_keys=True, ensure_ascii=False,
    separators=(",", ":")`` output except in the spelling of a few floats (``1e-5``, not ``1e-05``).
    """
    try:
        return orjson.dumps(value, option=_OPTIONS | orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _STDLIB_CANONICAL(value).encode("utf-8")


def loads(text: str | bytes) -> Any:
    """Parse JSON text; raises :data:`DecodeError` (a ``json.JSONDecodeError``) on bad input.

    Anything but text is a ``TypeError``, as with ``json.loads``: SQLAlchemy's SQLite
    dialect relies on that to pass through numbers that SQLite's column affinity converted.
    """
    if not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"JSON input must be text, not {type(text).__name__}")
    return orjson.loads(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
