"""Streamed ``openai:`` calls over real HTTP: the same answers as unstreamed ones, plus time to first token."""

from __future__ import annotations

import json

import httpx
import pytest

from hyouka.models.base import ChatRequest, GenerateRequest, GenerationParams, Message, Response, collect
from hyouka.models.openai_api import OpenAIModel
from hyouka.testing.openai_server import EchoModel, ServerStats, fail_first, serve_openai

PROMPTS = ["吾輩は猫である。名前はまだ無い。", "今日は晴れです", "x"]
REPLY = "東京です。"  # five characters: five chunks from the echo server


def _model(url: str, **options: object) -> OpenAIModel:
    return OpenAIModel("echo", base_url=url, backoff_s=0.01, **options)  # type: ignore[arg-type]


def _chat(text: str, params: GenerationParams | None = None) -> ChatRequest:
    return ChatRequest((Message("user", text),), params or GenerationParams())


@pytest.fixture(scope="module")
def echo_url():
    with serve_openai(EchoModel()) as url:
        yield url


def _same_answers(streamed: list[Response], plain: list[Response]) -> None:
    for s, p in zip(streamed, plain, strict=True):
        assert s.ok and p.ok, (s.error, p.error)
        assert (s.text, s.finish_reason) == (p.text, p.finish_reason)
        assert (s.prompt_tokens, s.completion_tokens) == (p.prompt_tokens, p.completion_tokens)
        assert s.prompt_tokens is not None and s.completion_tokens is not None
        assert s.latency_s is not None and s.latency_s > 0
        assert p.ttft_s is None
        if s.text:
            assert s.ttft_s is not None and 0 < s.ttft_s <= s.latency_s


def test_streamed_chat_matches_unstreamed(echo_url: str) -> None:
    params = GenerationParams(max_tokens=6)
    requests = [_chat(p) for p in PROMPTS] + [_chat(PROMPTS[0], params), _chat("")]
    streamed = collect(_model(echo_url, stream=True).chat(requests), len(requests))
    plain = collect(_model(echo_url).chat(requests), len(requests))
    _same_answers(streamed, plain)
    assert streamed[3].text == PROMPTS[0][:6] and streamed[3].finish_reason == "length"
    assert streamed[4].text == "" and streamed[4].ttft_s is None  # nothing came, so no first token


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_streamed_generate_matches_unstreamed(echo_url: str, api: str) -> None:
    params = GenerationParams(max_tokens=50, stop=("。",))
    requests = [GenerateRequest(p) for p in PROMPTS] + [GenerateRequest(PROMPTS[0], params)]
    streamed = collect(_model(echo_url, api=api, stream=True).generate(requests), len(requests))
    plain = collect(_model(echo_url, api=api).generate(requests), len(requests))
    _same_answers(streamed, plain)
    assert streamed[-1].text == "吾輩は猫である" and streamed[-1].finish_reason == "stop"


def test_auto_route_falls_back_to_chat_when_streaming() -> None:
    with serve_openai(EchoModel(reply=REPLY), endpoints=("chat/completions",)) as url:
        model = _model(url, stream=True)
        responses = collect(model.generate([GenerateRequest(p) for p in PROMPTS]), len(PROMPTS))
    assert model._generate_route == "chat"
    assert all(r.ok and r.text == REPLY and r.ttft_s is not None for r in responses)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_ttft_comes_before_the_last_chunk(api: str) -> None:
    delay, chunk_delay = 0.05, 0.05
    with serve_openai(EchoModel(reply=REPLY), delay_s=delay, chunk_delay_s=chunk_delay) as url:
        model = _model(url, api=api, stream=True)
        collect(model.generate([GenerateRequest("warm-up")]), 1)  # a first connection can be slow to open
        (r,) = collect(model.generate([GenerateRequest("質問")]), 1)
        (plain,) = collect(_model(url, api=api).generate([GenerateRequest("質問")]), 1)
    assert r.ok and r.text == REPLY == plain.text
    assert r.ttft_s is not None and r.latency_s is not None
    # ttft ~ delay; latency ~ delay + len(REPLY) * chunk_delay (0.30 s): orderings with wide margins
    assert delay * 0.9 <= r.ttft_s < delay + 3 * chunk_delay
    assert r.latency_s >= delay + (len(REPLY) - 1) * chunk_delay
    assert r.latency_s - r.ttft_s >= (len(REPLY) - 1) * chunk_delay * 0.9
    assert plain.ttft_s is None


def test_rate_limited_streams_are_retried() -> None:
    stats = ServerStats()
    with serve_openai(EchoModel(reply=REPLY), fail=fail_first(1, status=429, retry_after=0.02), stats=stats) as url:
        model = _model(url, stream=True)
        responses = collect(model.chat([_chat(p) for p in PROMPTS]), len(PROMPTS))
    assert all(r.ok and r.text == REPLY and r.ttft_s is not None for r in responses)
    assert model.stats.retries == len(PROMPTS) and model.stats.failures == 0
    assert stats.by_status[429] == len(PROMPTS) and stats.by_status[200] == len(PROMPTS)
    assert stats.in_flight == 0


def test_streaming_stays_out_of_identity(echo_url: str) -> None:
    assert _model(echo_url, stream=True).identity() == _model(echo_url).identity()


def test_server_speaks_openai_sse(echo_url: str) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "ab"}], "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{echo_url}/chat/completions", json=body) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in reply.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "a"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "ab"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2

    body = {"model": "echo", "prompt": "ab", "stream": True}
    with httpx.stream("POST", f"{echo_url}/completions", json=body) as reply:
        events = [line.removeprefix("data: ") for line in reply.iter_lines() if line]
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "ab"
    assert all("usage" not in c for c in chunks)  # none asked for
