"""The ``openai:`` backend over real HTTP against the local OpenAI-compatible server (echo backend)."""

from __future__ import annotations

import logging

import pytest

from hyouka.models.base import (
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    collect,
    dispatch,
)
from hyouka.models.openai_api import (
    OpenAIEndpointError,
    OpenAIModel,
    PromptLogprobsUnavailableError,
    public_url,
)
from hyouka.models.registry import load_model
from hyouka.testing.openai_server import (
    EchoModel,
    Fault,
    RequestInfo,
    ServerStats,
    fail_first,
    fail_matching,
    serve_openai,
)

PAIRS = [
    ("質問：日本の首都はどこですか。\n答え：", "東京"),
    ("今日は", "晴れです。"),
    ("", "こんにちは"),
    ("猫が", "鳴いた"),
]


def _model(url: str, **options: object) -> OpenAIModel:
    return OpenAIModel("echo", base_url=url, backoff_s=0.01, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def echo_url():
    with serve_openai(EchoModel()) as url:
        yield url


def test_loglikelihood_matches_the_served_model(echo_url: str) -> None:
    requests = [LoglikelihoodRequest(c, x) for c, x in PAIRS]
    via_http = collect(_model(echo_url).loglikelihood(requests), len(requests))
    direct = collect(EchoModel().loglikelihood(requests), len(requests))
    for got, want in zip(via_http, direct, strict=True):
        assert got.ok, got.error
        assert got.logprob == pytest.approx(want.logprob, abs=1e-9)
        assert got.is_greedy == want.is_greedy
        assert got.latency_s is not None and got.latency_s > 0
        assert got.prompt_tokens is not None


def test_generate_through_completions_honours_stop(echo_url: str) -> None:
    params = GenerationParams(max_tokens=50, stop=("。",))
    requests = [GenerateRequest("吾輩は猫である。名前はまだ無い。"), GenerateRequest("吾輩は猫である。", params)]
    model = _model(echo_url, api="completions")
    plain, stopped = collect(model.generate(requests), 2)
    assert plain.text == "吾輩は猫である。名前はまだ無い。"[:256]
    assert stopped.text == "吾輩は猫である"
    assert stopped.finish_reason == "stop"
    assert stopped.prompt_tokens == len("吾輩は猫である。") and stopped.completion_tokens == len("吾輩は猫である")


def test_generate_stops_even_when_the_server_ignores_stop() -> None:
    with serve_openai(EchoModel(reply="一行目\n二行目"), ignore_stop=True) as url:
        model = _model(url, api="completions")
        (r,) = collect(model.generate([GenerateRequest("x", GenerationParams(stop=("\n",)))]), 1)
    assert r.text == "一行目" and r.finish_reason == "stop"


def test_chat_and_generate_via_chat(echo_url: str) -> None:
    model = _model(echo_url, api="chat")
    conversation = (Message("system", "丁寧に答えてください。"), Message("user", "こんにちは！元気ですか？"))
    (r,) = collect(model.chat([ChatRequest(conversation, GenerationParams(stop=("！",)))]), 1)
    assert r.text == "こんにちは" and r.finish_reason == "stop"
    (g,) = collect(model.generate([GenerateRequest("一つのユーザーメッセージ")]), 1)
    assert g.text == "一つのユーザーメッセージ"
    assert not model.capabilities.loglikelihood
    with pytest.raises(Exception, match="loglikelihood"):
        list(dispatch(model, "loglikelihood", [LoglikelihoodRequest("a", "b")]))


def test_auto_falls_back_to_chat_when_completions_is_not_offered() -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), endpoints=("chat/completions",), stats=stats) as url:
        model = _model(url)
        texts = [r.text for r in collect(model.generate([GenerateRequest(f"問{i}") for i in range(5)]), 5)]
    assert texts == [f"問{i}" for i in range(5)]
    assert stats.by_path["completions"] == 1  # probed once, then chat only
    assert stats.by_path["chat/completions"] == 5


def test_429_with_retry_after_is_retried_and_counted() -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), fail=fail_first(1, status=429, retry_after=0.05), stats=stats) as url:
        model = _model(url, api="completions", concurrency=4)
        responses = collect(model.generate([GenerateRequest(f"p{i}") for i in range(6)]), 6)
    assert all(r.ok for r in responses)
    assert [r.text for r in responses] == [f"p{i}" for i in range(6)]
    assert stats.by_status[429] == 6 and stats.by_status[200] == 6
    assert model.stats.retries == 6 and model.stats.attempts == 12 and model.stats.failures == 0


def test_always_failing_prompts_become_error_responses_and_the_rest_succeed() -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), fail=fail_matching("壊れた"), stats=stats) as url:
        model = _model(url, api="completions", max_retries=2)
        prompts = ["良い1", "壊れた1", "良い2", "壊れた2", "良い3"]
        responses = collect(model.generate([GenerateRequest(p) for p in prompts]), len(prompts))
    for prompt, r in zip(prompts, responses, strict=True):
        if "壊れた" in prompt:
            assert not r.ok and r.error_type == "api_error" and "500" in (r.error or "")
            assert stats.attempts[("completions", prompt)] == 3  # first try + max_retries
        else:
            assert r.ok and r.text == prompt
    assert model.stats.failures == 2


def test_client_errors_are_not_retried() -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), fail=fail_matching("長すぎる", status=400), stats=stats) as url:
        (r,) = collect(_model(url, api="completions").generate([GenerateRequest("長すぎる")]), 1)
    assert not r.ok and r.error_type == "api_error" and "400" in (r.error or "")
    assert stats.requests == 1


def test_timeouts_are_retried_then_reported_as_timeout() -> None:
    def slow(info: RequestInfo) -> Fault | None:
        return Fault(status=None, delay_s=1.0) if "遅い" in info.prompt else None

    with serve_openai(EchoModel(), fail=slow) as url:
        model = _model(url, api="completions", timeout=0.2, max_retries=1)
        slow_r, fast_r = collect(model.generate([GenerateRequest("遅い"), GenerateRequest("速い")]), 2)
    assert slow_r.error_type == "timeout" and not slow_r.ok
    assert fast_r.ok and fast_r.text == "速い"
    assert model.stats.retries == 1


@pytest.mark.parametrize("mode", ["omit", "reject"])
def test_no_prompt_logprobs_fails_fast_with_a_hint(mode: str) -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), logprobs_mode=mode, stats=stats) as url:  # type: ignore[arg-type]
        model = _model(url, concurrency=8)
        requests = [LoglikelihoodRequest(f"文脈{i}", "続き") for i in range(50)]
        with pytest.raises(PromptLogprobsUnavailableError, match="--mode generate"):
            collect(model.loglikelihood(requests), len(requests))
    assert stats.requests == 1


def test_bounded_concurrency() -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(), delay_s=0.02, stats=stats) as url:
        model = _model(url, api="completions", concurrency=3)
        responses = collect(model.generate([GenerateRequest(str(i)) for i in range(30)]), 30)
    assert all(r.ok for r in responses)
    assert stats.max_in_flight <= 3


def test_responses_stream_in_completion_order() -> None:
    def slow_first(info: RequestInfo) -> Fault | None:
        return Fault(status=None, delay_s=0.5) if info.prompt == "遅い" else None

    with serve_openai(EchoModel(), fail=slow_first) as url:
        model = _model(url, api="completions", concurrency=4)
        order = [i for i, _ in model.generate([GenerateRequest("遅い"), GenerateRequest("a"), GenerateRequest("b")])]
    assert order[-1] == 0 and sorted(order) == [0, 1, 2]


def test_credentials_stay_out_of_identity_logs_and_errors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("MY_ENDPOINT_KEY", secret)

    def leaky(info: RequestInfo) -> Fault | None:
        return Fault(status=500, message=f"upstream said: bad token {secret}")

    with serve_openai(EchoModel(), fail=leaky) as url:
        model = OpenAIModel("echo", base_url=url, api_key_env="MY_ENDPOINT_KEY", max_retries=0)
        (r,) = collect(model.generate([GenerateRequest("x")]), 1)
    assert not r.ok and secret not in (r.error or "") and "***" in (r.error or "")
    assert secret not in repr(model)
    assert "HTTP" in caplog.text and secret not in caplog.text

    tricky = OpenAIModel("gpt-x", base_url="https://example.com/v1/?api-key=abc", api_key_env="MY_ENDPOINT_KEY")
    identity = tricky.identity()
    assert identity == {"backend": "openai", "model": "gpt-x", "base_url": "https://example.com/v1", "api": "auto"}
    assert all(s not in str(identity) + repr(tricky) for s in (secret, "abc"))
    with pytest.raises(ValueError, match="user:pass@") as refused:  # sent as Basic auth instead of the key
        OpenAIModel("gpt-x", base_url="https://user:pw@example.com/v1", api_key_env="MY_ENDPOINT_KEY")
    assert "pw" not in str(refused.value)
    assert public_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"


def test_hosted_openai_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    model = OpenAIModel("gpt-4o-mini")  # building it calls nothing, so a dry run needs no key
    with pytest.raises(OpenAIEndpointError, match="OPENAI_API_KEY"):
        model.check_ready()
    with pytest.raises(OpenAIEndpointError, match="OPENAI_API_KEY"):
        collect(model.generate([GenerateRequest("x")]), 1)


def test_refused_credentials_stop_the_run() -> None:
    with serve_openai(EchoModel(), fail=lambda info: Fault(status=401, message="invalid key")) as url:
        model = _model(url, api="completions")
        with pytest.raises(OpenAIEndpointError, match="401"):
            collect(model.generate([GenerateRequest("x"), GenerateRequest("y")]), 2)


def test_unknown_model_stops_the_run(echo_url: str) -> None:
    model = OpenAIModel("no-such-model", base_url=echo_url, api="completions")
    with pytest.raises(OpenAIEndpointError, match="no-such-model"):
        collect(model.generate([GenerateRequest("x")]), 1)


def test_registry_builds_the_backend(echo_url: str) -> None:
    model = load_model("openai:echo", base_url=echo_url, concurrency=2, api="completions")
    assert isinstance(model, OpenAIModel) and model.concurrency == 2
    (r,) = collect(dispatch(model, "generate", [GenerateRequest("やあ")]), 1)
    assert r.text == "やあ"
