"""The ``databricks:`` backend: Databricks model-serving endpoints through their OpenAI-compatible API.

``databricks:<endpoint-name>`` sends chat and completion requests to
``$DATABRICKS_HOST/serving-endpoints`` with the endpoint name as the model, so the
endpoint name is what the store records. Everything else (retries, concurrency,
usage and latency, streaming) is the ``openai:`` backend's.

Credentials are found as the Databricks CLI and SDK find them: ``DATABRICKS_HOST`` and
``DATABRICKS_TOKEN`` from the environment, else the ``host`` and ``token`` of a profile in
``~/.databrickscfg`` (``DATABRICKS_CONFIG_FILE`` moves the file; the profile is ``profile=``,
else ``DATABRICKS_CONFIG_PROFILE``, else ``DEFAULT``). A variable set in the environment wins
over the profile. The token reaches the HTTP client only: never the identity, the store or
an error message.
"""

from __future__ import annotations

import configparser
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hyouka.models.openai_api import OpenAIEndpointError, OpenAIModel, public_url
from hyouka.models.openai_retry import Failure

DEFAULT_PROFILE = "DEFAULT"


class DatabricksConfigError(OpenAIEndpointError):
    """No workspace host or token could be found, or the host does not resolve."""


@dataclass(frozen=True)
class DatabricksCredentials:
    """A workspace URL, its token, and where each came from (for error messages; never the token itself)."""

    host: str
    token: str
    host_source: str
    token_source: str

    def __repr__(self) -> str:
        return f"DatabricksCredentials(host={self.host!r}, host_source={self.host_source!r}, token=***)"


def config_file() -> Path:
    """The CLI's configuration file: ``$DATABRICKS_CONFIG_FILE`` or ``~/.databrickscfg``."""
    return Path(os.environ.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg").expanduser()


def read_profile(path: Path, profile: str) -> dict[str, str]:
    """The keys of ``[profile]`` in a ``.databrickscfg`` (empty when the file or the section is missing)."""
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise DatabricksConfigError(f"{path}: not a valid Databricks configuration file ({exc})") from None
    if profile == parser.default_section:
        return dict(parser.defaults())
    return dict(parser[profile]) if parser.has_section(profile) else {}


def normalise_host(host: str) -> str:
    """``adb-1.2.azuredatabricks.net/`` -> ``https://adb-1.2.azuredatabricks.net`` (as the CLI does)."""
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"


def find_credentials(*, profile: str | None = None, host: str | None = None) -> DatabricksCredentials:
    """Host and token from ``host=``, the environment, or a ``.databrickscfg`` profile (see the module doc)."""
    name = profile or os.environ.get("DATABRICKS_CONFIG_PROFILE") or DEFAULT_PROFILE
    path = config_file()
    section = read_profile(path, name)
    where = f"profile [{name}] in {path}"
    if profile and not section and not (host or os.environ.get("DATABRICKS_HOST")):
        raise DatabricksConfigError(f"Databricks profile [{name}] not found in {path}")
    if host:
        host_value, host_source = host, "host="
    elif os.environ.get("DATABRICKS_HOST"):
        host_value, host_source = os.environ["DATABRICKS_HOST"], "DATABRICKS_HOST"
    elif section.get("host"):
        host_value, host_source = section["host"], f"host of {where}"
    else:
        raise DatabricksConfigError(f"no Databricks host: set DATABRICKS_HOST or add host = ... to {where}")
    if os.environ.get("DATABRICKS_TOKEN"):
        token, token_source = os.environ["DATABRICKS_TOKEN"], "DATABRICKS_TOKEN"
    elif section.get("token"):
        token, token_source = section["token"], f"token of {where}"
    else:
        raise DatabricksConfigError(
            f"no Databricks token: set DATABRICKS_TOKEN or add token = ... to {where} "
            f"(a personal access token, as `databricks configure` writes it)"
        )
    return DatabricksCredentials(normalise_host(host_value), token, host_source, token_source)


class DatabricksModel(OpenAIModel):
    """A Databricks model-serving endpoint behind the hyouka model protocol.

    ``profile`` picks a ``.databrickscfg`` profile, ``host`` overrides the workspace URL;
    every other option is the ``openai:`` backend's (``api``, ``concurrency``, ``stream``...).
    """

    def __init__(self, endpoint: str, *, profile: str | None = None, host: str | None = None, **options: Any) -> None:
        for taken in ("base_url", "api_key_env"):
            if taken in options:
                raise ValueError(f"databricks: takes no {taken}= (the host and token come from "
                                 f"DATABRICKS_HOST/DATABRICKS_TOKEN or a .databrickscfg profile)")
        self.credentials = find_credentials(profile=profile, host=host)
        self.profile = profile
        super().__init__(endpoint, base_url=f"{self.credentials.host}/serving-endpoints", **options)
        self.api_key_env = self.credentials.token_source  # named in refusal hints; a name, never the token

    def __repr__(self) -> str:
        return f"DatabricksModel({self.name!r}, host={public_url(self.credentials.host)!r})"

    def _read_key(self) -> str:
        return self.credentials.token

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "backend": "databricks", "host": public_url(self.credentials.host)}

    def _make_client(self) -> Any:
        """The ``openai`` client, once the workspace host is known to resolve (a typo fails here, by name)."""
        parts = urlsplit(self.credentials.host)
        try:
            socket.getaddrinfo(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            raise DatabricksConfigError(
                f"Databricks host {public_url(self.credentials.host)} (from {self.credentials.host_source}) "
                f"does not resolve ({exc}); check the workspace URL"
            ) from None
        return super()._make_client()

    def _refusal_hint(self, failure: Failure) -> str:
        creds = self.credentials
        if failure.status in (401, 403):
            what = "is not valid" if failure.status == 401 else "lacks permission to query this endpoint"
            return f"the Databricks token (from {creds.token_source}) {what}"
        if "does not exist" in failure.message.lower() and "endpoint" in failure.message.lower():
            return f"the workspace {public_url(creds.host)} has no serving endpoint named {self.name!r}"
        return (f"the Databricks host {public_url(creds.host)} (from {creds.host_source}) does not serve "
                f"/serving-endpoints: check that it is your workspace URL")
