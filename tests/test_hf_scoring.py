"""Shared-prefix vs naive scoring, batching invariance, generation batching (hf: backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyouka.models.base import GenerateRequest, GenerationParams, LoglikelihoodRequest, collect
from hyouka.models.hf_batching import Unit, plan_batches

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

FEWSHOT = "質問：主に子ども向けのもので、イラストのついた物語が書かれているものはどれ？\n答え:絵本\n\n"
QUESTIONS = {
    "質問：数字の１を表すときに使う記号は？\n答え:": ["数字", "1", "記号", "いち"],
    "質問：算数で習うものは？\n答え:数": ["字", "学", "値", "え方"],  # "数字"/"数学" merge across the boundary
    "質問：春に咲く花は？\n答え:": ["桜", "ひまわり", "コスモス"],
    "": ["絵本", "図鑑"],
}


def requests(fewshot: str = FEWSHOT) -> list[LoglikelihoodRequest]:
    out = []
    for question, choices in QUESTIONS.items():
        context = fewshot + question if question else ""
        out.extend(LoglikelihoodRequest(context, c) for c in choices)
    return out


@pytest.fixture(scope="module", params=[("llama", 1), ("gpt_neox", 2)], ids=["llama", "gpt_neox"])
def model_dir(request, tmp_path_factory: pytest.TempPathFactory, jglue_dir: Path) -> Path:
    from hyouka.testing.tiny import build_tiny_model

    arch, seed = request.param
    out = tmp_path_factory.mktemp(f"tiny-{arch}")
    return build_tiny_model(out, corpus_dir=jglue_dir, arch=arch, seed=seed, hidden_size=64, num_layers=2)


def scores(path: Path, reqs: list[LoglikelihoodRequest], packed: bool = True, **options) -> list[float]:
    """Log-likelihoods from the backend; ``packed=False`` forces the per-row (2D mask) shared-prefix path."""
    from hyouka.models.hf import HFModel

    model = HFModel(str(path), device="cpu", **options)
    if not packed:
        model._fwd.mask_kind = None
    responses = collect(model.loglikelihood(reqs), len(reqs))
    assert all(r.ok for r in responses)
    return [r.logprob for r in responses]


def test_fixture_has_boundary_merges(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from hyouka.models.hf_scoring import build_groups
    from hyouka.models.hf_tokens import encode_pairs, special_prefix

    tok = AutoTokenizer.from_pretrained(model_dir)
    reqs = requests()
    pairs = encode_pairs(tok, [(r.context, r.continuation) for r in reqs], prefix=special_prefix(tok), max_length=2048)
    merged = [p.ids[: p.cont_start] != p.ref for p in pairs]
    groups = build_groups(pairs, range(len(pairs)))
    mixed = [g for g in groups if len({merged[m] for m in g.members}) == 2]
    assert mixed, "need a group where some continuations merge with the context and some do not"
    assert any(min(g.stable) < max(g.stable) for g in mixed)


@pytest.mark.parametrize(
    "options",
    [{"packed": True}, {"packed": False}, {"attn_implementation": "eager"}],
    ids=["packed-sdpa", "rows", "packed-eager"],
)
def test_shared_prefix_equals_naive(model_dir: Path, options: dict) -> None:
    reqs = requests()
    naive = scores(model_dir, reqs, scoring="naive")
    shared = scores(model_dir, reqs, scoring="shared_prefix", **options)
    assert shared == pytest.approx(naive, abs=1e-5)
    assert len(set(naive)) == len(naive)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 1},
        {"batch_size": 3},
        {"token_budget": 40},
        {"token_budget": 300},
        {"batch_size": 3, "packed": False},
        {"token_budget": 100, "packed": False},
        {"batch_size": 2, "scoring": "naive"},
        {"token_budget": 64, "scoring": "naive"},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_scores_do_not_depend_on_batching(model_dir: Path, options: dict) -> None:
    reqs = requests()
    base = scores(model_dir, reqs)
    assert scores(model_dir, reqs, **options) == pytest.approx(base, abs=1e-5)


def test_truncated_contexts_shared_equals_naive(model_dir: Path) -> None:
    reqs = requests(fewshot=FEWSHOT * 3)
    naive = scores(model_dir, reqs, scoring="naive", max_length=24)
    shared = scores(model_dir, reqs, scoring="shared_prefix", max_length=24)
    assert shared == pytest.approx(naive, abs=1e-5)
    assert scores(model_dir, reqs, max_length=24, packed=False) == pytest.approx(naive, abs=1e-5)
    assert scores(model_dir, reqs, scoring="shared_prefix", max_length=24, batch_size=2) == pytest.approx(
        naive, abs=1e-5
    )


@pytest.mark.parametrize("options", [{}, {"packed": False}, {"scoring": "naive"}], ids=["packed", "rows", "naive"])
def test_vocab_projection_only_near_continuation_positions(model_dir: Path, options: dict) -> None:
    from hyouka.models.hf import HFModel

    model = HFModel(str(model_dir), device="cpu", scoring=options.get("scoring", "shared_prefix"))
    if options.get("packed") is False:
        model._fwd.mask_kind = None
    projected: list[int] = []
    head = model.model.get_output_embeddings()
    handle = head.register_forward_hook(lambda _m, _i, out: projected.append(out.shape[0] * out.shape[1]))
    try:
        reqs = requests()
        responses = collect(model.loglikelihood(reqs), len(reqs))
    finally:
        handle.remove()
    n_cont = sum(r.completion_tokens for r in responses)
    n_tokens = sum(r.prompt_tokens + r.completion_tokens for r in responses)
    # vocabulary logits for (about) the continuation tokens only, never for whole sequences
    assert sum(projected) <= 3 * n_cont + len(projected)
    assert sum(projected) < n_tokens / 5


def test_unshareable_cache_falls_back_to_naive(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hyouka.models import hf_scoring
    from hyouka.models.hf import HFModel
    from hyouka.models.hf_forward import CacheReuseUnsupported

    def refuse(cache):
        raise CacheReuseUnsupported("test")

    reqs = requests()
    expected = scores(model_dir, reqs, scoring="naive")
    monkeypatch.setattr(hf_scoring, "cache_tensors", refuse)
    model = HFModel(str(model_dir), device="cpu", batch_size=4)
    got = [r.logprob for r in collect(model.loglikelihood(reqs), len(reqs))]
    assert model.scoring == "naive"
    assert got == pytest.approx(expected, abs=1e-5)


def test_model_without_position_ids_scores_naively(
    tmp_path: Path, jglue_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyouka.models import hf
    from hyouka.models.hf import HFModel
    from hyouka.testing.tiny import build_tiny_model

    def forbid(*args, **kwargs):
        raise AssertionError("shared-prefix scoring needs position ids")

    monkeypatch.setattr(hf, "score_shared", forbid)
    path = build_tiny_model(tmp_path / "bloom", corpus_dir=jglue_dir, arch="bloom", hidden_size=64, num_layers=2)
    model = HFModel(str(path), device="cpu", batch_size=4)
    assert model.scoring == "shared_prefix"  # known only once the weights load, on the first forward pass
    reqs = requests()
    got = [r.logprob for r in collect(model.loglikelihood(reqs), len(reqs))]
    assert model.scoring == "naive"
    alone = [scores(path, [r], scoring="naive")[0] for r in reqs[:4]]  # one row each: no padding at all
    assert got[:4] == pytest.approx(alone, abs=1e-5)


def test_rows_finishing_early_do_not_change_other_rows(model_dir: Path) -> None:
    from hyouka.models.hf import HFModel

    model = HFModel(str(model_dir), device="cpu")
    prompts = ["質問：日本の首都は？\n答え:", "こんにちは", "絵本", "数字の１を表す記号"]
    long = [collect(model.generate([GenerateRequest(p, GenerationParams(max_tokens=10))]), 1)[0].text for p in prompts]
    lengths = [1, 2, 10, 4, 10, 3, 7, 10]
    reqs = [GenerateRequest(prompts[i % 4], GenerationParams(max_tokens=n)) for i, n in enumerate(lengths)]
    out = collect(model.generate(reqs), len(reqs))
    for i, (r, n) in enumerate(zip(out, lengths, strict=True)):
        assert r.completion_tokens == n
        assert long[i % 4].startswith(r.text.rstrip("\ufffd"))
        if n == 10:
            assert r.text == long[i % 4]


def test_plan_batches_respects_budget_and_order() -> None:
    units = [Unit(1, n) for n in (5, 40, 12, 40, 7, 30)] + [Unit(5, 20)]
    batches = plan_batches(units, budget=100)
    assert sorted(i for b in batches for i in b) == list(range(len(units)))
    for b in batches:
        rows = sum(units[i].rows for i in b)
        assert rows * max(units[i].length for i in b) <= 100 or len(b) == 1
    firsts = [units[b[0]].length for b in batches]
    assert firsts == sorted(firsts, reverse=True)
    assert plan_batches(units, max_rows=2) and all(
        sum(units[i].rows for i in b) <= 2 or len(b) == 1 for b in plan_batches(units, max_rows=2)
    )


def test_out_of_memory_halves_the_budget_and_retries(model_dir: Path) -> None:
    from hyouka.models.base import Response
    from hyouka.models.hf import HFModel

    model = HFModel(str(model_dir), device="cpu", token_budget=80)
    units = [Unit(1, 10) for _ in range(8)]
    seen: list[list[int]] = []

    def run(batch: list[int]) -> list[tuple[int, Response]]:
        seen.append(batch)
        if len(batch) > 2:
            raise torch.OutOfMemoryError("simulated")
        return [(i, Response(text=str(i))) for i in batch]

    out = list(model._run_batches(units, run))
    assert sorted(i for i, _ in out) == list(range(8))
    assert model._budget == 20 and len(seen[0]) == 8
    assert all(r.latency_s is not None for _, r in out)


def test_cuda_budget_is_probed_once_on_the_longest_item(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probing logic, with torch.cuda's memory counters faked (no GPU needed)."""
    from hyouka.models.base import Response
    from hyouka.models.hf import HFModel

    model = HFModel(str(model_dir), device="cpu")
    model.device = torch.device("cuda")  # only _run_batches looks at it here
    fake = {"allocated": 0}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: fake["allocated"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100_000, 200_000))
    units = [Unit(1, n) for n in (10, 40, 20, 30, 10, 10)]
    seen: list[list[int]] = []

    def run(batch: list[int]) -> list[tuple[int, Response]]:
        seen.append(batch)
        fake["allocated"] = 100 * sum(units[i].rows for i in batch) * max(units[i].length for i in batch)
        return [(i, Response()) for i in batch]

    out = list(model._run_batches(units, run))
    assert sorted(i for i, _ in out) == list(range(6))
    assert seen[0] == [1]  # the longest item alone
    assert model._budget == int(0.7 * 100_000 / 100)  # 700 slots
    for batch in seen[1:]:
        assert len(batch) * max(units[i].length for i in batch) <= 700
