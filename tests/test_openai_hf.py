"""The ``openai:`` backend against the local server backed by the tiny HF model gives what ``hf:`` gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyouka.models.base import (
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    collect,
)
from hyouka.models.openai_api import OpenAIModel
from hyouka.testing.openai_server import ServerStats, serve_openai

# contexts ending mid-word, so some joint tokenisations merge across the context/continuation boundary
EDGE_PAIRS = [
    ("日本の首", "都は東京です。"),
    ("今日", "は良い天気ですね。"),
    ("電子機器で使用される", "マザーボード"),
    ("", "こんにちは、世界。"),
    ("質問：猫は何と鳴く？\n答え：", "ニャー"),
    ("吾輩は猫である。名前は", "まだ無い。"),
    ("トラ", "ンペットを吹く"),  # byte-level BPE splits ン/ペ: vLLM shows "トラ", "", "�ット"
]


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir: Path):
    from hyouka.models.hf import HFModel

    return HFModel(str(tiny_model_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def served(hf_model):
    stats = ServerStats()
    with serve_openai(hf_model, model_name="tiny", stats=stats) as url:
        yield OpenAIModel("tiny", base_url=url, concurrency=4), stats


def _jcqa_pairs(jglue_dir: Path, n_questions: int = 8) -> list[tuple[str, str]]:
    path = jglue_dir / "jcommonsenseqa-v1.3" / "valid-v1.3.json"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n_questions]]
    return [(f"質問：{r['question']}\n答え：", r[f"choice{k}"]) for r in rows for k in range(5)]


@pytest.mark.parametrize(
    ("tokenizer", "next_token"), [("local", True), ("local", False), ("server", True), ("server", False)]
)
def test_loglikelihoods_match_the_hf_backend(
    hf_model, tiny_model_dir: Path, jglue_dir: Path, tokenizer: str, next_token: bool
) -> None:
    """Served the way vLLM answers (BOS in the offsets, split multi-byte tokens), every route gives hf:'s numbers.

    The server tokenizer (``/tokenize``, no offsets) splits by common prefix, which agrees with the
    offsets rule on these pairs; mid-word boundaries where they differ need ``tokenizer=``.
    """
    stats = ServerStats()
    with serve_openai(hf_model, model_name="tiny", stats=stats, logprob_token_ids=next_token) as url:
        model = OpenAIModel(
            "tiny", base_url=url, concurrency=4, tokenizer=str(tiny_model_dir) if tokenizer == "local" else None
        )
        _assert_like_hf(hf_model, model, _jcqa_pairs(jglue_dir) + EDGE_PAIRS)
    probes = 0 if next_token else 1  # the next-token request the server ignored, before echoing
    assert stats.by_path["completions"] == 8 + len(EDGE_PAIRS) + probes  # one request per context


def _assert_like_hf(hf_model, model, pairs: list[tuple[str, str]]) -> None:
    requests = [LoglikelihoodRequest(c, x) for c, x in pairs]
    direct = collect(hf_model.loglikelihood(requests), len(requests))
    via_http = collect(model.loglikelihood(requests), len(requests))
    assert len(requests) >= 40
    for pair, want, got in zip(pairs, direct, via_http, strict=True):
        assert want.ok and got.ok, (pair, want.error, got.error)
        assert got.logprob == pytest.approx(want.logprob, abs=1e-4), pair
        assert got.is_greedy == want.is_greedy, pair


def test_generation_matches_through_completions_and_chat(hf_model, served) -> None:
    model, stats = served
    params = GenerationParams(max_tokens=12)
    prompt = "質問：日本の首都はどこですか？\n答え："
    (want,) = collect(hf_model.generate([GenerateRequest(prompt, params)]), 1)
    (got,) = collect(model.generate([GenerateRequest(prompt, params)]), 1)
    assert want.ok and got.ok and got.text == want.text
    assert got.completion_tokens == want.completion_tokens and got.prompt_tokens

    chat = ChatRequest((Message("user", "こんにちは。自己紹介してください。"),), params)
    (want_chat,) = collect(hf_model.chat([chat]), 1)
    (got_chat,) = collect(model.chat([chat]), 1)
    assert got_chat.ok and got_chat.text == want_chat.text
    assert stats.by_path["chat/completions"] >= 1


def test_stop_strings_are_honoured(hf_model, served) -> None:
    model, _ = served
    prompt = "吾輩は猫である。"
    (free,) = collect(hf_model.generate([GenerateRequest(prompt, GenerationParams(max_tokens=16))]), 1)
    text = free.text or ""
    stop = text[len(text) // 2 :][:1]
    if not stop.strip():
        pytest.skip("the tiny model generated nothing usable as a stop string")
    cut = text[: text.index(stop)]
    (got,) = collect(model.generate([GenerateRequest(prompt, GenerationParams(max_tokens=16, stop=(stop,)))]), 1)
    assert got.text == cut and got.finish_reason == "stop"
