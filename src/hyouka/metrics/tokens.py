"""``token_count``: an answer's length in tiktoken ``cl100k_base`` tokens, as MLflow counts it.

MLflow's ``token_count`` is ``len(tiktoken.get_encoding("cl100k_base").encode(answer))``. tiktoken
downloads that encoding's BPE file on first use unless its cache has it (``TIKTOKEN_CACHE_DIR``,
MLflow's recipe for machines without network). ``HYOUKA_TIKTOKEN_FILE`` may instead name a local
``cl100k_base.tiktoken`` (plain or ``.gz``): it must have the SHA-256 tiktoken expects, and is
read by tiktoken's own loader into cl100k_base's pattern and special tokens. Text that spells a
special token (``<|endoftext|>``) counts as plain text, where MLflow's call raises.

Needs ``pip install 'hyouka[tiktoken]'``. The morpheme count is another metric, ``answer_tokens``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["CL100K_SHA256", "FILE_ENV", "TokenizerUnavailable", "cl100k_base", "token_count"]

FILE_ENV = "HYOUKA_TIKTOKEN_FILE"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"  # tiktoken's expected_hash
# cl100k_base's split pattern and special tokens, as tiktoken_ext.openai_public defines them
# (tests/test_metrics_tokens.py checks them against the installed tiktoken)
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                  "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}

_lock = threading.Lock()
_cache: dict[str | None, Any] = {}


class TokenizerUnavailable(RuntimeError):
    """tiktoken's cl100k_base could not be loaded here; the message says how to provide it."""


def _tiktoken() -> Any:
    try:
        import tiktoken
        import tiktoken.load
    except ImportError as exc:
        raise ImportError("token_count counts tiktoken cl100k_base tokens: pip install 'hyouka[tiktoken]'") from exc
    return tiktoken


def _from_file(path: str) -> Any:
    tiktoken = _tiktoken()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TokenizerUnavailable(f"{FILE_ENV}={path}: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != CL100K_SHA256:
        raise TokenizerUnavailable(f"{FILE_ENV}={path} is not tiktoken's cl100k_base.tiktoken "
                                   f"(sha256 {digest}, expected {CL100K_SHA256})")
    with tempfile.TemporaryDirectory() as folder:  # tiktoken's loader reads a path
        plain = Path(folder) / "cl100k_base.tiktoken"
        plain.write_bytes(data)
        ranks = tiktoken.load.load_tiktoken_bpe(str(plain), expected_hash=CL100K_SHA256)
    return tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks,
                             special_tokens=CL100K_SPECIAL)


def _from_tiktoken() -> Any:
    tiktoken = _tiktoken()
    try:
        return tiktoken.get_encoding("cl100k_base")
    except Exception as exc:  # a failed download surfaces as requests', urllib3's or OSError's exceptions
        raise TokenizerUnavailable(
            f"token_count counts tiktoken cl100k_base tokens, as MLflow does, but tiktoken could not load its BPE "
            f"file ({type(exc).__name__}: {exc}). Without network, put the file in tiktoken's cache "
            f"(TIKTOKEN_CACHE_DIR) or set {FILE_ENV} to a local cl100k_base.tiktoken") from exc


def cl100k_base() -> Any:
    """tiktoken's ``cl100k_base`` encoding (from ``HYOUKA_TIKTOKEN_FILE`` when set), loaded once."""
    path = os.environ.get(FILE_ENV) or None
    with _lock:
        encoding = _cache.get(path)
        if encoding is None:
            encoding = _cache[path] = _from_file(path) if path else _from_tiktoken()
    return encoding


def token_count(text: str | None) -> int:
    """Length of ``text`` in cl100k_base tokens (0 for ``None``)."""
    if not text:
        return 0
    return len(cl100k_base().encode(text, disallowed_special=()))
