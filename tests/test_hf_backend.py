"""The hf: backend against direct transformers computations on the tiny test model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hyouka.models.base import (
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    Model,
    collect,
)

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path):
    from hyouka.models.hf import HFModel

    return HFModel(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    lm = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return tok, lm


def direct_loglikelihood(reference, context: str, continuation: str, n_context: int | None = None) -> float:
    """Full forward pass of the joint sequence, log_softmax, sum over the continuation tokens.

    The continuation tokens are found independently of the backend: the context encoded alone
    must be a prefix of the joint encoding (a clean boundary), unless ``n_context`` is given.
    """
    tok, lm = reference
    joint = tok(context + continuation)["input_ids"]
    if n_context is None:
        ctx = tok(context)["input_ids"]
        assert joint[: len(ctx)] == ctx, "test case must have a clean token boundary"
        n_context = len(ctx)
    with torch.no_grad():
        logp = lm(torch.tensor([joint])).logits[0].float().log_softmax(-1)
    return sum(logp[t - 1, joint[t]].item() for t in range(n_context, len(joint)))


def jcqa_requests(jglue_dir: Path, n_questions: int = 4) -> list[LoglikelihoodRequest]:
    path = jglue_dir / "jcommonsenseqa-v1.3" / "valid-v1.3.json"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n_questions]]
    return [
        LoglikelihoodRequest(f"質問：{row['question']}\n答え:", row[f"choice{i}"]) for row in rows for i in range(5)
    ]


def test_is_a_model(model) -> None:
    assert isinstance(model, Model)
    assert model.capabilities.loglikelihood and model.capabilities.generate and model.capabilities.chat


def test_choice_loglikelihoods_equal_direct_computation(model, reference, jglue_dir: Path) -> None:
    requests = jcqa_requests(jglue_dir)
    responses = collect(model.loglikelihood(requests), len(requests))
    tok, _ = reference
    for req, resp in zip(requests, responses, strict=True):
        assert resp.ok
        expected = direct_loglikelihood(reference, req.context, req.continuation)
        assert resp.logprob == pytest.approx(expected, abs=1e-4)
        n_ctx = len(tok(req.context)["input_ids"])
        assert resp.prompt_tokens == n_ctx
        assert resp.completion_tokens == len(tok(req.context + req.continuation)["input_ids"]) - n_ctx
        assert resp.latency_s is not None and resp.latency_s >= 0
    # the choices of one question must not all score the same (the model is really consulted)
    assert len({round(r.logprob, 3) for r in responses[:5]}) > 1


def test_token_merging_across_the_boundary_counts_in_the_continuation(model, reference) -> None:
    tok, _ = reference
    # "数字" is one token of the tiny BPE: it starts inside the context "…数" and belongs to the continuation
    context, continuation = "数", "字の読み方"
    joint = tok(context + continuation, add_special_tokens=False, return_offsets_mapping=True)
    first_start, first_end = joint["offset_mapping"][0]
    assert first_start < len(context) < first_end, "fixture lost its boundary-merging token"
    resp = collect(model.loglikelihood([LoglikelihoodRequest(context, continuation)]), 1)[0]
    # only BOS is context; every real token (the merged one included) is continuation
    assert resp.prompt_tokens == 1
    assert resp.logprob == pytest.approx(direct_loglikelihood(reference, context, continuation, 1), abs=1e-4)


def test_empty_context_conditions_on_bos(model, reference) -> None:
    resp = collect(model.loglikelihood([LoglikelihoodRequest("", "絵本")]), 1)[0]
    assert resp.prompt_tokens == 1
    assert resp.logprob == pytest.approx(direct_loglikelihood(reference, "", "絵本", 1), abs=1e-4)


def test_empty_continuation_scores_zero(model) -> None:
    resp = collect(model.loglikelihood([LoglikelihoodRequest("答え:", "")]), 1)[0]
    assert resp.logprob == 0.0 and resp.is_greedy and resp.completion_tokens == 0


def test_is_greedy(model, reference) -> None:
    tok, lm = reference
    context = "質問：日本の首都はどこ？\n答え:"
    ids = tok(context)["input_ids"]
    with torch.no_grad():
        best = int(lm(torch.tensor([ids])).logits[0, -1].argmax())
        second = int(lm(torch.tensor([ids])).logits[0, -1].topk(2).indices[1])
    requests = [LoglikelihoodRequest(context, tok.decode([t])) for t in (best, second)]
    for req, t in zip(requests, (best, second), strict=True):  # the strings must re-encode to that token
        assert tok(req.context + req.continuation)["input_ids"] == [*ids, t]
    greedy, other = collect(model.loglikelihood(requests), 2)
    assert greedy.is_greedy is True and other.is_greedy is False
    assert greedy.logprob > other.logprob


def test_long_context_is_left_truncated(tiny_model_dir: Path, reference) -> None:
    from hyouka.models.hf import HFModel

    tok, lm = reference
    short = HFModel(str(tiny_model_dir), device="cpu", max_length=16)
    context = "質問：主に子ども向けのもので、イラストのついた物語が書かれているものはどれ？\n答え:"
    continuation = "絵本"
    joint = tok(context + continuation)["input_ids"]
    n_cont = len(joint) - len(tok(context)["input_ids"])
    assert len(joint) > 17
    window = joint[-17:]  # 16 positions fed, the last token only predicted
    with torch.no_grad():
        logp = lm(torch.tensor([window])).logits[0].float().log_softmax(-1)
    expected = sum(logp[t - 1, window[t]].item() for t in range(17 - n_cont, 17))
    resp = collect(short.loglikelihood([LoglikelihoodRequest(context, continuation)]), 1)[0]
    assert resp.logprob == pytest.approx(expected, abs=1e-4)
    too_long = collect(short.loglikelihood([LoglikelihoodRequest("a", "絵本" * 20)]), 1)[0]
    assert not too_long.ok and too_long.error_type == "context_length"


PROMPTS = [
    "質問：日本の首都は？\n答え:",
    "こんにちは",
    "数字の１を表すときに使う記号はどれ？少し長めの質問文を書いておきます。",
    "絵本",
]


def test_left_padded_batch_generates_like_batch_size_one(model) -> None:
    params = GenerationParams(max_tokens=12)
    single = [collect(model.generate([GenerateRequest(p, params)]), 1)[0] for p in PROMPTS]
    batch = collect(model.generate([GenerateRequest(p, params) for p in PROMPTS]), len(PROMPTS))
    assert [r.text for r in batch] == [r.text for r in single]
    assert len({r.text for r in single}) > 1
    for r in batch:
        assert r.completion_tokens == 12 and r.finish_reason == "length" and r.prompt_tokens


def test_generation_stop_strings_and_max_tokens(model) -> None:
    full = collect(model.generate([GenerateRequest(PROMPTS[0], GenerationParams(max_tokens=12))]), 1)[0].text
    stop = full[4:6]
    cut = full[: full.find(stop)]
    requests = [
        GenerateRequest(PROMPTS[0], GenerationParams(max_tokens=12, stop=(stop,))),
        GenerateRequest(PROMPTS[0], GenerationParams(max_tokens=12, stop=("not-in-output", stop))),
        GenerateRequest(PROMPTS[0], GenerationParams(max_tokens=3)),
        GenerateRequest(PROMPTS[1], GenerationParams(max_tokens=0)),
    ]
    stopped, stopped2, short, empty = collect(model.generate(requests), len(requests))
    assert stopped.text == cut and stopped.finish_reason == "stop"
    assert stopped.completion_tokens < 12
    assert stopped2.text == cut
    assert short.completion_tokens == 3 and short.finish_reason == "length"
    assert full.startswith(short.text)
    assert empty.text == "" and empty.completion_tokens == 0


def test_sampling_is_seeded(model) -> None:
    def sample(seed: int) -> str:
        params = GenerationParams(max_tokens=10, temperature=1.0, seed=seed)
        return collect(model.generate([GenerateRequest(PROMPTS[0], params)]), 1)[0].text

    assert sample(1) == sample(1)
    assert len({sample(1), sample(2), sample(3)}) > 1


def test_chat_uses_the_template(model, reference) -> None:
    tok, _ = reference
    messages = (Message("system", "簡潔に答えて"), Message("user", "こんにちは"))
    params = GenerationParams(max_tokens=6)
    chat = collect(model.chat([ChatRequest(messages, params)]), 1)[0]
    rendered = tok.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages], tokenize=False, add_generation_prompt=True
    )
    assert "<|assistant|>" in rendered
    assert chat.ok and chat.completion_tokens == 6
    assert chat.prompt_tokens == len(tok(rendered, add_special_tokens=False)["input_ids"])
    # the rendered template already holds BOS, so generating from it with no added BOS is the same
    plain = collect(model._generate([rendered], [params], []), 1)[0]
    assert plain.text == chat.text


def test_no_chat_capability_without_template(tmp_path: Path, jglue_dir: Path) -> None:
    from hyouka.models.base import UnsupportedRequestError, dispatch
    from hyouka.models.hf import HFModel
    from hyouka.testing.tiny import build_tiny_model

    path = build_tiny_model(tmp_path / "m", corpus_dir=jglue_dir, chat_template=False, num_layers=1, hidden_size=64)
    model = HFModel(str(path), device="cpu")
    assert not model.capabilities.chat
    with pytest.raises(UnsupportedRequestError):
        dispatch(model, "chat", [ChatRequest((Message("user", "hi"),))])


def test_identity(model, tiny_model_dir: Path) -> None:
    from hyouka.models.hf import HFModel

    ident = model.identity()
    assert ident["backend"] == "hf"
    assert ident["model"] == str(tiny_model_dir)
    assert ident["dtype"] == "float32"
    assert ident["max_length"] == 2048
    assert ident["tokenizer_class"] and ident["tokenizer"]
    assert ident["revision"].startswith("local-")
    assert HFModel(str(tiny_model_dir), device="cpu").identity() == ident
    json.dumps(ident)
    hub = HFModel(str(tiny_model_dir), device="cpu")
    hub.config._commit_hash = "0123abcd" * 5  # what from_pretrained records for a hub snapshot
    assert hub.identity()["revision"] == "0123abcd" * 5


def test_weights_load_on_first_forward_pass(tiny_model_dir: Path) -> None:
    from hyouka.models.hf import HFModel

    lazy = HFModel(str(tiny_model_dir), device="cpu")
    before = lazy.identity()
    assert lazy._model is None  # identity (the cache keys) needs the config and tokenizer only
    (scored,) = collect(lazy.loglikelihood([LoglikelihoodRequest("質問：", "答え")]), 1)
    assert scored.ok and scored.logprob < 0
    assert lazy._model is not None and lazy.model.dtype == lazy.dtype
    assert HFModel(str(tiny_model_dir), device="cpu").identity() == before == lazy.identity()
    eager = HFModel(str(tiny_model_dir), device="cpu")
    eager.load()
    assert eager._model is not None and eager.identity() == before


def test_a_run_answered_from_the_cache_never_loads_the_weights(
    tiny_model_dir: Path, jglue_dir: Path, store, cache
) -> None:
    import hyouka
    from hyouka.models.hf import HFModel

    options = {"num_fewshot": 1, "limit": 6, "data_dir": jglue_dir, "store": store, "cache": cache}
    first = hyouka.run(HFModel(str(tiny_model_dir), device="cpu"), "jcommonsenseqa", **options)["jcommonsenseqa"]
    fresh = HFModel(str(tiny_model_dir), device="cpu")  # a new process's model, say
    again = hyouka.run(fresh, "jcommonsenseqa", **options)["jcommonsenseqa"]
    assert first.model_calls == 30 and again.model_calls == 0 and again.cache_hits == 30
    assert again.aggregates["acc"]["value"] == first.aggregates["acc"]["value"]
    assert fresh._model is None


def test_registry_loads_hf_spec(tiny_model_dir: Path) -> None:
    from hyouka.models.hf import HFModel
    from hyouka.models.registry import load_model

    model = load_model(f"hf:{tiny_model_dir}", device="cpu", batch_size=4)
    assert isinstance(model, HFModel) and model.batch_size == 4


def test_tiny_model_is_deterministic(tmp_path: Path, jglue_dir: Path, tiny_model_dir: Path) -> None:
    from hyouka.testing.tiny import build_tiny_model

    again = build_tiny_model(tmp_path / "again", corpus_dir=jglue_dir, arch="llama", seed=0)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes()


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    from hyouka.models.hf import HFModel
    from hyouka.models.hf_deps import MissingDependencyError

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "hyouka\[hf\]"'):
        HFModel(str(tiny_model_dir))
    with pytest.raises(ImportError, match="hyouka"):
        HFModel(str(tiny_model_dir))


def test_importing_the_backend_does_not_import_torch() -> None:
    code = (
        "import sys, hyouka, hyouka.models.hf, hyouka.models.registry, hyouka.testing.tiny; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loading_and_running_show_no_second_progress_bar_and_no_deprecation(
    tiny_model_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import warnings

    from transformers.utils import logging as hf_logging

    from hyouka.models.hf import HFModel

    model = HFModel(str(tiny_model_dir), device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load()
        pairs = [LoglikelihoodRequest("質問：日本の首都は", c) for c in ("東京", "京都")]
        scored = collect(model.loglikelihood(pairs), 2)
        generated = collect(model.generate([GenerateRequest("質問：", GenerationParams(max_tokens=4))]), 1)
    assert all(r.ok for r in scored + generated)
    assert "Loading weights" not in capfd.readouterr().err  # the run's own progress is the only bar
    assert hf_logging.is_progress_bar_enabled()  # and transformers' setting is as it was
    noisy = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not noisy, [str(w.message) for w in noisy]  # e.g. `past_key_values` is deprecated (transformers 5.24)
