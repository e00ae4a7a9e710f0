"""``databricks:`` and ``azure:`` through the real ``openai`` client, against local servers that check each
service's paths and auth headers (Databricks: ``/serving-endpoints`` + Bearer; Azure:
``/openai/deployments/<d>/...?api-version=`` + ``api-key`` or an Entra ID Bearer token)."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import pytest

from hyouka.models.base import ChatRequest, GenerateRequest, GenerationParams, Message, collect
from hyouka.models.openai_api import OpenAIEndpointError
from hyouka.models.registry import load_model
from hyouka.testing.openai_server import EchoModel, Route, ServerStats, serve_openai

TOKEN = "dapi-0123456789abcdef-secret"
AZURE_KEY = "azure-key-5f3c9e-secret"
VERSION = "2024-10-21"
CHAT = ChatRequest((Message("user", "日本の首都は？"),), GenerationParams(max_tokens=16))
PROMPT = GenerateRequest("質問：日本の首都は？\n答え：", GenerationParams(max_tokens=16))


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Databricks/Azure settings from the machine; a config-file path in tmp (absent until written)."""
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "AZURE_OPENAI_ENDPOINT",
                "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "databrickscfg"
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(cfg))
    return cfg


def _host(url: str) -> str:
    return url.removesuffix("/serving-endpoints").removesuffix("/openai")


# ------------------------------------------------------------------ databricks


@pytest.fixture()
def databricks_server():
    stats = ServerStats()
    with serve_openai(EchoModel(reply="東京です。"), model_name="my-llama-endpoint", stats=stats,
                      route=Route.databricks(TOKEN)) as url:
        yield _host(url), stats


def test_databricks_chat_and_completions_use_serving_endpoints_with_a_bearer_token(
    clean_env, databricks_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, stats = databricks_server
    monkeypatch.setenv("DATABRICKS_HOST", host)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    model = load_model("databricks:my-llama-endpoint", api="completions")
    (gen,) = collect(model.generate([PROMPT]), 1)
    chat_model = load_model("databricks:my-llama-endpoint")
    (chat,) = collect(chat_model.chat([CHAT]), 1)
    for r in (gen, chat):
        assert r.ok, r.error
        assert r.text == "東京です。"
        assert r.prompt_tokens and r.completion_tokens == len("東京です。")
        assert r.latency_s is not None and r.latency_s > 0
    assert stats.targets["/serving-endpoints/completions"] == 1
    assert stats.targets["/serving-endpoints/chat/completions"] == 1
    identity = chat_model.identity()
    assert identity["backend"] == "databricks" and identity["model"] == "my-llama-endpoint"
    assert TOKEN not in json.dumps(identity) + repr(chat_model) + repr(chat_model.credentials)


def test_databricks_reads_the_cli_profile(clean_env: Path, databricks_server, monkeypatch) -> None:
    host, stats = databricks_server
    clean_env.write_text(
        "[DEFAULT]\nhost = https://wrong.invalid\ntoken = dapi-wrong\n\n"
        f"[staging]\nhost  = {host}/\ntoken = {TOKEN}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "staging")
    (r,) = collect(load_model("databricks:my-llama-endpoint").chat([CHAT]), 1)
    assert r.ok and r.text == "東京です。"
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE")
    (r,) = collect(load_model("databricks:my-llama-endpoint", profile="staging").chat([CHAT]), 1)
    assert r.ok and r.text == "東京です。"
    with pytest.raises(OpenAIEndpointError, match=r"profile \[nope\] not found"):
        load_model("databricks:my-llama-endpoint", profile="nope")
    assert stats.targets["/serving-endpoints/chat/completions"] == 2


def test_databricks_names_a_wrong_token(clean_env, databricks_server, monkeypatch) -> None:
    host, stats = databricks_server
    monkeypatch.setenv("DATABRICKS_HOST", host)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-stale-token-value")
    with pytest.raises(OpenAIEndpointError) as info:
        collect(load_model("databricks:my-llama-endpoint").chat([CHAT]), 1)
    message = str(info.value)
    assert "Databricks token (from DATABRICKS_TOKEN) is not valid" in message
    assert "dapi-stale-token-value" not in message
    assert stats.by_status[401] == 1  # refused once, not retried


def test_databricks_names_a_wrong_host(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.setenv("DATABRICKS_HOST", "https://no-such-workspace.invalid")
    with pytest.raises(OpenAIEndpointError, match=r"host https://no-such-workspace.invalid \(from DATABRICKS_HOST\) "
                                                  r"does not resolve"):
        collect(load_model("databricks:my-llama-endpoint").chat([CHAT]), 1)
    with serve_openai(EchoModel(), model_name="my-llama-endpoint") as url:  # a server, but not a workspace
        monkeypatch.setenv("DATABRICKS_HOST", url.removesuffix("/v1"))
        with pytest.raises(OpenAIEndpointError, match=r"does not serve /serving-endpoints"):
            collect(load_model("databricks:my-llama-endpoint").chat([CHAT]), 1)


def test_databricks_names_an_unknown_endpoint_and_missing_settings(clean_env, databricks_server, monkeypatch) -> None:
    host, _ = databricks_server
    with pytest.raises(OpenAIEndpointError, match="no Databricks host: set DATABRICKS_HOST"):
        load_model("databricks:x")
    monkeypatch.setenv("DATABRICKS_HOST", host)
    with pytest.raises(OpenAIEndpointError, match="no Databricks token: set DATABRICKS_TOKEN"):
        load_model("databricks:x")
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    with pytest.raises(OpenAIEndpointError, match="has no serving endpoint named 'typo-endpoint'"):
        collect(load_model("databricks:typo-endpoint").chat([CHAT]), 1)


def test_a_databricks_run_records_the_endpoint_and_never_the_token(
    clean_env, databricks_server, monkeypatch, tmp_path: Path, jglue_dir: Path
) -> None:
    from hyouka.api import run
    from hyouka.store.store import Store

    host, stats = databricks_server
    monkeypatch.setenv("DATABRICKS_HOST", host)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    db = tmp_path / "results.sqlite"
    result = run("databricks:my-llama-endpoint", "jsquad", limit=3, data_dir=jglue_dir, store=f"sqlite:///{db}",
                 cache=tmp_path / "cache.sqlite", concurrency=2)
    (run_result,) = result.runs
    stored = Store(f"sqlite:///{db}").get_run(run_result.run_id)
    assert stored["model"] == "databricks:my-llama-endpoint"
    assert stored["model_identity"]["model"] == "my-llama-endpoint"
    assert stats.by_path["completions"] + stats.by_path["chat/completions"] >= 3
    for path in (db, tmp_path / "cache.sqlite"):
        assert TOKEN.encode() not in path.read_bytes()


# ------------------------------------------------------------------ azure


@pytest.fixture()
def azure_key_server():
    stats = ServerStats()
    with serve_openai(EchoModel(reply="東京です。"), model_name="gpt4o-prod", stats=stats,
                      route=Route.azure(key=AZURE_KEY)) as url:
        yield _host(url), stats


def test_azure_uses_deployment_paths_the_api_version_and_the_api_key_header(
    clean_env, azure_key_server, monkeypatch
) -> None:
    endpoint, stats = azure_key_server
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)
    model = load_model("azure:gpt4o-prod")
    (chat,) = collect(model.chat([CHAT]), 1)
    (gen,) = collect(load_model("azure:gpt4o-prod", api="completions", api_version="2024-06-01").generate([PROMPT]), 1)
    for r in (chat, gen):
        assert r.ok, r.error
        assert r.text == "東京です。" and r.completion_tokens == len("東京です。") and r.latency_s
    assert stats.targets[f"/openai/deployments/gpt4o-prod/chat/completions?api-version={VERSION}"] == 1
    assert stats.targets["/openai/deployments/gpt4o-prod/completions?api-version=2024-06-01"] == 1
    identity = model.identity()
    assert identity["backend"] == "azure" and identity["model"] == "gpt4o-prod" and identity["api_version"] == VERSION
    assert AZURE_KEY not in json.dumps(identity) + repr(model)


def test_azure_names_a_wrong_key_deployment_or_missing_version(clean_env, azure_key_server, monkeypatch) -> None:
    endpoint, _ = azure_key_server
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "not-the-key")
    with pytest.raises(OpenAIEndpointError, match="no Azure OpenAI API version: give --api-version"):
        load_model("azure:gpt4o-prod")
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)
    with pytest.raises(OpenAIEndpointError, match="the key in AZURE_OPENAI_API_KEY is not valid") as info:
        collect(load_model("azure:gpt4o-prod").chat([CHAT]), 1)
    assert "not-the-key" not in str(info.value)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    with pytest.raises(OpenAIEndpointError, match=r"no deployment .gpt-4o. at .* with api-version 2024-10-21"):
        collect(load_model("azure:gpt-4o").chat([CHAT]), 1)


def test_azure_sends_an_entra_id_bearer_token_from_a_provider(clean_env, monkeypatch) -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(reply="はい"), model_name="gpt4o-prod", stats=stats,
                      route=Route.azure(bearer="entra-token-1")) as url:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", _host(url))
        calls: list[int] = []

        def provider() -> str:
            calls.append(1)
            return "entra-token-1"

        model = load_model("azure:gpt4o-prod", api_version=VERSION, token_provider=provider)
        (r,) = collect(model.chat([CHAT]), 1)
    assert r.ok and r.text == "はい" and model.auth == "entra" and calls
    assert stats.by_status[200] == 1


def test_azure_signs_in_with_azure_identity(clean_env, monkeypatch, tmp_path: Path) -> None:
    """``auth="entra"`` through azure-identity's real DefaultAzureCredential, its Azure CLI credential
    answered by a stand-in ``az`` on PATH (the only credential allowed, via AZURE_TOKEN_CREDENTIALS)."""
    pytest.importorskip("azure.identity")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    expires = int(time.time()) + 3600
    az.write_text(f"#!/bin/sh\necho '{{\"accessToken\": \"entra-from-cli\", \"expires_on\": {expires}}}'\n")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
    stats = ServerStats()
    with serve_openai(EchoModel(reply="はい"), model_name="gpt4o-prod", stats=stats,
                      route=Route.azure(bearer="entra-from-cli")) as url:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", _host(url))
        (r,) = collect(load_model("azure:gpt4o-prod", api_version=VERSION, auth="entra").chat([CHAT]), 1)
    assert r.ok, r.error
    assert r.text == "はい"


def test_azure_without_a_key_or_azure_identity_names_the_extra(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if the extra were not installed
    with pytest.raises(OpenAIEndpointError, match=r"set AZURE_OPENAI_API_KEY, or install hyouka\[azure\]"):
        load_model("azure:gpt4o-prod")
    with pytest.raises(ImportError, match=r"pip install 'hyouka\[azure\]'"):
        load_model("azure:gpt4o-prod", auth="entra")


def test_the_cli_passes_api_version_and_profile(clean_env: Path, azure_key_server, databricks_server, monkeypatch,
                                                tmp_path: Path, jglue_dir: Path) -> None:
    from typer.testing import CliRunner

    from hyouka.cli import app

    endpoint, azure_stats = azure_key_server
    host, databricks_stats = databricks_server
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    clean_env.write_text(f"[team]\nhost = {host}\ntoken = {TOKEN}\n", encoding="utf-8")
    common = ["-t", "jsquad", "--limit", "2", "--data-dir", str(jglue_dir), "--store",
              f"sqlite:///{tmp_path / 'r.sqlite'}", "--no-cache", "--chat"]
    runner = CliRunner()
    result = runner.invoke(app, ["run", "-m", "azure:gpt4o-prod", "--api-version", "2024-06-01", *common])
    assert result.exit_code == 0, result.output
    assert azure_stats.targets["/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-06-01"] == 2
    result = runner.invoke(app, ["run", "-m", "databricks:my-llama-endpoint", "--profile", "team", *common])
    assert result.exit_code == 0, result.output
    assert databricks_stats.targets["/serving-endpoints/chat/completions"] == 2
    result = runner.invoke(app, ["run", "-m", "databricks:my-llama-endpoint", "--profile", "missing", *common])
    assert result.exit_code != 0 and "profile [missing] not found" in result.output
