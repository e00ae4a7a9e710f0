"""Tokenizers for ``openai:`` log-likelihoods: the model's own, local or the server's.

The context/continuation boundary is the one of ``hf:`` (:func:`hyouka.models.hf_tokens.encode_pairs`),
applied either to a local Hugging Face tokenizer (``tokenizer=``, the exact rule with character
offsets) or to the server's tokenizer through vLLM's ``POST /tokenize`` (no offsets: the rule's
common-prefix form, which ``encode_pairs`` uses for every tokenizer without offsets).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hyouka.models.hf_deps import MissingDependencyError
from hyouka.models.openai_retry import backoff

UNBOUNDED = 10**9  # max length of a tokenizer that states none
RETRIES = 3


class TokenizeUnavailableError(RuntimeError):
    """The server offers no ``/tokenize`` route."""


def load_tokenizer(name: str) -> Any:
    """The Hugging Face tokenizer ``name`` (a hub name or a local folder), as ``hf:`` loads it."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError(f'--tokenizer needs transformers: pip install "hyouka[hf]" ({exc})') from exc

    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as exc:
        raise OSError(f"--tokenizer {name}: cannot load this tokenizer ({exc})") from exc


def tokenizer_max_length(tokenizer: Any) -> int:
    """The tokens a prompt may hold: the tokenizer's ``model_max_length`` when it states a real one."""
    value = getattr(tokenizer, "model_max_length", None)
    return int(value) if isinstance(value, int) and 0 < value < UNBOUNDED else UNBOUNDED


class ServerTokenizer:
    """The served model's tokenizer behind vLLM's ``POST /tokenize``, shaped like the part of a Hugging Face
    tokenizer that :func:`~hyouka.models.hf_tokens.encode_pairs` calls.

    It gives ids but no character offsets (``is_fast`` is False). ``root_url`` is the server's root
    (``/tokenize`` sits beside ``/v1``); texts are tokenized ``concurrency`` at a time.
    """

    is_fast = False

    def __init__(self, http: Any, root_url: str, model: str, *, concurrency: int = 8) -> None:
        self._http, self._url, self._model = http, root_url.rstrip("/") + "/tokenize", model
        self._concurrency = concurrency
        first = self._tokenize("a", add_special_tokens=True)
        plain = self._tokenize("a", add_special_tokens=False)
        self.model_max_length = int(first.get("max_model_len") or UNBOUNDED)
        ids, bare = first["tokens"], plain["tokens"]
        front = ids[: len(ids) - len(bare)] if bare and ids[len(ids) - len(bare) :] == bare else []
        self.bos_token_id: int | None = front[-1] if front else None
        self.eos_token_id: int | None = None

    def _tokenize(self, text: str, *, add_special_tokens: bool) -> dict[str, Any]:
        import httpx

        body = {"model": self._model, "prompt": text, "add_special_tokens": add_special_tokens}
        for attempt in range(RETRIES + 1):  # a busy server's 5xx or a dropped connection is worth another try
            try:
                reply = self._http.post(self._url, json=body)
            except httpx.TransportError:
                if attempt == RETRIES:
                    raise
            else:
                if reply.status_code < 500 or attempt == RETRIES:
                    break
            time.sleep(backoff(attempt, base_s=0.5))
        if reply.status_code in (404, 405):
            raise TokenizeUnavailableError(f"{self._url} answered {reply.status_code}")
        reply.raise_for_status()
        body = reply.json()
        if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
            raise TokenizeUnavailableError(f"{self._url} answered without a token list")
        return body

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = True, **_: Any) -> dict[str, Any]:
        if isinstance(texts, str):
            return {"input_ids": self._tokenize(texts, add_special_tokens=add_special_tokens)["tokens"]}
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="hyouka-tokenize") as pool:
            bodies = list(pool.map(lambda t: self._tokenize(t, add_special_tokens=add_special_tokens), texts))
        return {"input_ids": [b["tokens"] for b in bodies]}
