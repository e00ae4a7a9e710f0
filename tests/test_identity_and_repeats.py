"""Model identity of local checkpoints, repeat indices on requests, fan-out accounting, timed cache flushes."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from hyouka.engine.accounting import run_accounting
from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.jsonio import canonical_bytes
from hyouka.models import fingerprint
from hyouka.models.base import (
    ChatRequest,
    GenerateRequest,
    GenerationParams,
    Message,
    Response,
    identity_digest,
    repeated,
    request_key,
)
from hyouka.models.fingerprint import FingerprintCache, folder_fingerprint
from tests.fakes import ScriptedModel


def _flip_last_byte(path: Path) -> None:
    """Change a file's contents, keeping its size (and its mtime, as a copy from elsewhere may)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))


def test_a_retrained_checkpoint_of_the_same_sizes_has_another_identity(
    tiny_model_dir: Path, tmp_path: Path, hyouka_home: Path
) -> None:
    from hyouka.models.hf import HFModel

    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_model_dir, retrained)
    weights = next(retrained.glob("*.safetensors"))
    before = HFModel(str(retrained), dtype="float32", device="cpu").identity()["revision"]
    _flip_last_byte(weights)
    after = HFModel(str(retrained), dtype="float32", device="cpu").identity()["revision"]
    assert before != after and after.startswith("local-sha256:")


def test_the_fingerprint_covers_subfolders_and_is_the_sha256_of_the_contents(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    (root / "shards").mkdir(parents=True)
    (root / "config.json").write_text("{}", encoding="utf-8")
    (root / "shards" / "part-1.bin").write_bytes(b"\x00" * 1000)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref", encoding="utf-8")
    cache = FingerprintCache(tmp_path / "fingerprints.json")
    # by hand: each file's relative path and SHA-256, in path order (hidden files left out)
    expected = hashlib.sha256()
    for name, data in (("config.json", b"{}"), ("shards/part-1.bin", b"\x00" * 1000)):
        expected.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    assert folder_fingerprint(root, cache) == "sha256:" + expected.hexdigest()[:16]
    first = folder_fingerprint(root, cache)
    _flip_last_byte(root / "shards" / "part-1.bin")
    assert folder_fingerprint(root, cache) != first


def test_unchanged_files_are_not_hashed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ckpt"
    root.mkdir()
    for i in range(3):
        (root / f"w{i}.bin").write_bytes(os.urandom(4096))
    hashed: list[Path] = []
    real = fingerprint.file_sha256
    monkeypatch.setattr(fingerprint, "file_sha256", lambda p: hashed.append(p) or real(p))
    store = tmp_path / "fingerprints.json"
    first = folder_fingerprint(root, FingerprintCache(store))
    assert len(hashed) == 3
    assert folder_fingerprint(root, FingerprintCache(store)) == first  # a new process: read from the file
    assert len(hashed) == 3
    _flip_last_byte(root / "w1.bin")
    assert folder_fingerprint(root, FingerprintCache(store)) != first
    assert [p.name for p in hashed[3:]] == ["w1.bin"]


def test_repeats_are_distinct_requests_when_sampling_and_one_shared_request_when_greedy() -> None:
    model = ScriptedModel()
    executor = Executor(model)
    sampled = GenerateRequest("問題", GenerationParams(temperature=0.8, seed=7))
    copies = repeated(sampled, 4)
    assert [r.repeat for r in copies] == [None, 1, 2, 3] and [r.params.seed for r in copies] == [7, 8, 9, 10]
    assert len({executor.key(r) for r in copies}) == 4
    list(executor.execute(copies))
    assert len(model.calls) == 4

    greedy = ChatRequest((Message("user", "問題"),), GenerationParams(temperature=0.0))
    model.calls.clear()
    answers = dict(executor.execute(repeated(greedy, 4)))
    assert len(model.calls) == 1 and len(answers) == 4


def test_a_request_without_a_repeat_keeps_its_cache_key() -> None:
    identity = {"backend": "scripted", "name": "scripted"}
    request = GenerateRequest("問題", GenerationParams(max_tokens=8))
    # the key as it was computed before requests had a repeat index
    payload = {"kind": "generate", "prompt": "問題", "params": {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0,
                                                            "stop": [], "seed": None}}
    before = hashlib.sha256(identity_digest(identity) + canonical_bytes(payload)).hexdigest()
    assert request_key(identity, request) == before
    assert request_key(identity, GenerateRequest("問題", GenerationParams(max_tokens=8), repeat=1)) != before


def test_an_answer_fanned_out_to_duplicate_requests_is_paid_once() -> None:
    model = ScriptedModel()
    request = GenerateRequest("同じ質問", GenerationParams(max_tokens=8))
    answers = sorted(Executor(model).execute([request, request, request]), key=lambda pair: pair[0])
    assert len(model.calls) == 1
    samples = [{"status": "ok", "responses": [r.to_dict(compact=True)]} for _, r in answers]
    accounting = run_accounting(samples, None)
    assert accounting["n_calls"] == 3 and accounting["n_cached_calls"] == 2
    assert accounting["prompt_tokens"] == 3 * len(request.prompt)  # nominal tokens stay per answer


def test_an_answer_reaches_the_cache_file_without_a_flush_or_another_answer(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k", Response(text="答え"))
    reader = sqlite3.connect(tmp_path / "cache.sqlite")
    deadline = time.monotonic() + 30
    while not reader.execute("SELECT COUNT(*) FROM responses WHERE key = 'k'").fetchone()[0]:
        assert time.monotonic() < deadline, "the answer was never committed"
        time.sleep(0.05)
    reader.close()
    cache.close()
