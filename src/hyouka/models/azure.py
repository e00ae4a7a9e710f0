"""The ``azure:`` backend: Azure OpenAI deployments through the ``openai`` package's ``AzureOpenAI`` client.

``azure:<deployment>`` sends requests to
``$AZURE_OPENAI_ENDPOINT/openai/deployments/<deployment>/...?api-version=...``; the API
version comes from ``api_version=`` (``--api-version``), else ``OPENAI_API_VERSION``.
Everything else (retries, concurrency, usage and latency, streaming) is the ``openai:``
backend's.

Authentication (``auth=``): ``"key"`` sends ``AZURE_OPENAI_API_KEY`` in the ``api-key``
header; ``"entra"`` sends a Microsoft Entra ID bearer token from ``azure-identity``'s
``DefaultAzureCredential`` (``pip install 'hyouka[azure]'``; ``az login``, a managed identity,
or the ``AZURE_CLIENT_*`` variables); ``"auto"`` (default) uses the key when it is set, else
Entra ID. Python callers may pass their own ``token_provider`` (a callable returning a token).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

from hyouka.models.openai_api import PLACEHOLDER_KEY, OpenAIEndpointError, OpenAIModel, public_url
from hyouka.models.openai_retry import Failure

AuthKind = Literal["auto", "key", "entra"]
KEY_ENV = "AZURE_OPENAI_API_KEY"
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
VERSION_ENV = "OPENAI_API_VERSION"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureConfigError(OpenAIEndpointError):
    """The endpoint, API version or credentials are missing, or Entra ID sign-in failed."""


def entra_token_provider(scope: str = ENTRA_SCOPE) -> Callable[[], str]:
    """A bearer-token callable from ``azure-identity``'s ``DefaultAzureCredential`` (the ``azure`` extra)."""
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as exc:
        raise ImportError(
            "azure: Entra ID sign-in needs azure-identity: pip install 'hyouka[azure]' "
            f"(or set {KEY_ENV} to use a key)"
        ) from exc
    provider = get_bearer_token_provider(DefaultAzureCredential(), scope)

    def token() -> str:
        try:
            return provider()
        except Exception as exc:  # azure-identity raises its own ClientAuthenticationError family
            raise AzureConfigError(
                f"Entra ID sign-in failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"run `az login`, use a managed identity, or set {KEY_ENV}"
            ) from None

    return token


class AzureOpenAIModel(OpenAIModel):
    """An Azure OpenAI deployment behind the hyouka model protocol.

    ``endpoint`` overrides ``AZURE_OPENAI_ENDPOINT``; other options are the ``openai:`` backend's.
    """

    def __init__(
        self,
        deployment: str,
        *,
        endpoint: str | None = None,
        api_version: str | None = None,
        auth: AuthKind = "auto",
        token_provider: Callable[[], str] | None = None,
        **options: Any,
    ) -> None:
        for taken in ("base_url", "api_key_env"):
            if taken in options:
                raise ValueError(f"azure: takes no {taken}= (use endpoint= / {ENDPOINT_ENV} and {KEY_ENV})")
        if auth not in ("auto", "key", "entra"):
            raise ValueError(f"auth must be 'auto', 'key' or 'entra', not {auth!r}")
        self.endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or "").rstrip("/")
        if not self.endpoint:
            raise AzureConfigError(f"no Azure OpenAI endpoint: set {ENDPOINT_ENV} (https://<resource>.openai.azure.com)")
        self.api_version = api_version or os.environ.get(VERSION_ENV) or ""
        if not self.api_version:
            raise AzureConfigError(f"no Azure OpenAI API version: give --api-version or set {VERSION_ENV} "
                                   f"(e.g. 2024-10-21)")
        key = os.environ.get(KEY_ENV, "")
        if token_provider is not None or auth == "entra" or (auth == "auto" and not key):
            if auth == "key":
                raise ValueError("auth='key' and a token_provider exclude each other")
            self.auth: AuthKind = "entra"
            self._token_provider = token_provider or self._default_provider(explicit=auth == "entra")
        else:
            if not key:
                raise AzureConfigError(f"no Azure OpenAI key: set {KEY_ENV} (or use auth='entra')")
            self.auth, self._token_provider = "key", None
        self._azure_key = key if self.auth == "key" else ""
        super().__init__(deployment, base_url=f"{self.endpoint}/openai", api_key_env=KEY_ENV, **options)

    @staticmethod
    def _default_provider(*, explicit: bool) -> Callable[[], str]:
        try:
            return entra_token_provider()
        except ImportError as exc:
            if explicit:
                raise
            raise AzureConfigError(
                f"no Azure OpenAI credentials: set {KEY_ENV}, or install hyouka[azure] for Entra ID sign-in"
            ) from exc

    def __repr__(self) -> str:
        return f"AzureOpenAIModel({self.name!r}, endpoint={public_url(self.endpoint)!r}, auth={self.auth!r})"

    def _read_key(self) -> str:
        return self._azure_key or PLACEHOLDER_KEY

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "backend": "azure", "endpoint": public_url(self.endpoint),
                "api_version": self.api_version}

    def _make_client(self) -> Any:
        import openai

        credential: dict[str, Any] = (
            {"azure_ad_token_provider": self._token_provider} if self._token_provider else {"api_key": self._azure_key}
        )
        return openai.AzureOpenAI(
            azure_endpoint=self.endpoint, api_version=self.api_version, max_retries=0, timeout=self.timeout,
            **credential,
        )

    def _refusal_hint(self, failure: Failure) -> str:
        if failure.status in (401, 403):
            who = f"the key in {KEY_ENV}" if self.auth == "key" else "the Entra ID identity"
            what = "is not valid for" if failure.status == 401 else "lacks access to"
            role = "" if self.auth == "key" else " (it needs the Cognitive Services OpenAI User role)"
            return f"{who} {what} {public_url(self.endpoint)}{role}"
        return (f"no deployment {self.name!r} at {public_url(self.endpoint)} with api-version {self.api_version}: "
                f"check the deployment name, {ENDPOINT_ENV} and the API version")
