"""Refuse secrets in a job spec: a spec is stored, listed and shown, so it must hold none.

A job names the environment variable an agent reads its key from (``api_key_env``), never the key.
:func:`check_no_secrets` walks a spec's values and raises :class:`SecretInSpecError`, naming the
field, for an option whose name says it holds a credential (``api_key``, ``token``, ``password``,
``Authorization``…) or a value that looks like one (``sk-…``, ``Bearer …``, a JWT, a private key, a
URL with a password or a token in its query). The error never repeats the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# words of an option name that say it holds a credential (names split at _, -, . and case changes)
_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "password", "passwd", "pwd", "authorization", "auth", "credential",
    "credentials", "bearer", "cookie", "signature", "sas",
})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# values that are credentials whatever their option is called
_SECRET_VALUES = (
    ("an OpenAI-style key", re.compile(r"^(sk|pk|rk)-[A-Za-z0-9_\-]{12,}")),
    ("a Databricks token", re.compile(r"^dapi[0-9a-f]{16,}")),
    ("a Hugging Face token", re.compile(r"^hf_[A-Za-z0-9]{16,}")),
    ("a GitHub token", re.compile(r"^(gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}")),
    ("a Slack token", re.compile(r"^xox[abposr]-")),
    ("an AWS access key", re.compile(r"^(AKIA|ASIA)[0-9A-Z]{16}$")),
    ("an authorization header value", re.compile(r"^(Bearer|Basic|Token)\s+\S{8,}", re.IGNORECASE)),
    ("a JSON web token", re.compile(r"^eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)
_URL_SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "api-key", "token", "access_token", "sig", "signature",
                                "code", "password", "secret"})


class SecretInSpecError(ValueError):
    """A job spec holds a credential (or something that looks like one)."""


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[\s_\-.]+", spaced.lower()) if w]


def _name_is_secret(name: str, value: Any) -> bool:
    words = _words(name)
    if not words or (not (_SECRET_WORDS & set(words)) and "apikey" not in name.lower().replace("_", "")):
        return False
    # ``api_key_env: OPENAI_API_KEY`` names the variable that holds the key: that is what a spec should say
    return not (words[-1] == "env" and isinstance(value, str) and _ENV_NAME.match(value))


def _value_secret(value: str) -> str | None:
    text = value.strip()
    for what, pattern in _SECRET_VALUES:
        if pattern.search(text):
            return what
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError:
            return None
        if parts.password:
            return "a URL with a password"
        if any(k.lower() in _URL_SECRET_PARAMS for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            return "a URL with a credential in its query"
    return None


def _refuse(where: str, why: str) -> SecretInSpecError:
    return SecretInSpecError(
        f"job spec: {where} {why}; a job is stored and shown, so it never holds secrets. Leave the key in the "
        "agent's environment and name its variable instead (--api-key-env NAME, or api_key_env: NAME in "
        "jobs.yaml); OpenAI, Azure and Databricks backends also read their usual variables"
    )


def check_no_secrets(value: Any, where: str = "spec") -> None:
    """Raise :class:`SecretInSpecError` naming the first field of ``value`` that holds a credential."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}"
            if item is not None and item != "" and _name_is_secret(str(key), item):
                raise _refuse(path, "is named like a credential")
            check_no_secrets(item, path)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_no_secrets(item, f"{where}[{i}]")
    elif isinstance(value, str):
        what = _value_secret(value)
        if what:
            raise _refuse(where, f"looks like {what}")
