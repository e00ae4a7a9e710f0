"""token_count: tiktoken cl100k_base tokens as MLflow counts them, loaded without network.

tiktoken downloads cl100k_base's BPE file from a hub, which no test may do. So: the loading path
runs on a BPE file built here (every byte a token, plus merges for two kanji: counts worked out
by hand); the pattern and special tokens are checked against the installed tiktoken's own
definition; a missing or wrong file is a clear error before any model call. When the real file is
at hand (``HYOUKA_TIKTOKEN_FILE``), the counts are compared with MLflow's own ``token_count``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

import hyouka
from hyouka.metrics import tokens
from tests.fakes import ScriptedModel

tiktoken = pytest.importorskip("tiktoken")
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"  # tiktoken's cache key


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_cache", {})


def _bpe_file(path: Path) -> Path:
    """A BPE file in tiktoken's format: base64 token, space, rank; all 256 bytes, then 東 and 京 merged."""
    ranks = [bytes([b]) for b in range(256)]
    for kanji in "東京":
        raw = kanji.encode()
        ranks += [raw[:2], raw]
    path.write_bytes(b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(ranks)))
    return path


def _use(monkeypatch: pytest.MonkeyPatch, path: Path, data: bytes | None = None) -> None:
    monkeypatch.setattr(tokens, "CL100K_SHA256", hashlib.sha256(data or path.read_bytes()).hexdigest())
    monkeypatch.setenv(tokens.FILE_ENV, str(path))


def test_pattern_and_special_tokens_are_tiktokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiktoken_ext import openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})  # no download: the ranks aside
    definition = openai_public.cl100k_base()
    assert definition["pat_str"] == tokens.CL100K_PATTERN
    assert definition["special_tokens"] == tokens.CL100K_SPECIAL
    assert tokens.CL100K_SHA256 == "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def test_counts_with_a_bpe_file_built_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _bpe_file(tmp_path / "toy.tiktoken")
    _use(monkeypatch, path)
    # 東京: two merged kanji -> 2; は (3 bytes, no merge) -> 3; " abc" -> 4 bytes; 。 -> 3 bytes
    assert tokens.token_count("東京は abc。") == 2 + 3 + 4 + 3
    assert tokens.token_count("<|endoftext|>") == len(b"<|endoftext|>")  # plain text, not the special token
    assert tokens.token_count("") == tokens.token_count(None) == 0
    gz = tmp_path / "toy.tiktoken.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    monkeypatch.setattr(tokens, "_cache", {})
    _use(monkeypatch, gz, path.read_bytes())
    assert tokens.token_count("京東") == 2


def test_evaluate_reports_token_count_and_morpheme_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _use(monkeypatch, _bpe_file(tmp_path / "toy.tiktoken"))
    rows = [{"answer": "東京です"}, {"answer": "京都"}]
    result = hyouka.evaluate(data=rows, predictions="answer", metrics=["token_count", "morpheme_count"],
                             store=f"sqlite:///{tmp_path / 's.sqlite'}", cache=False)
    assert result.table["token_count/score"].tolist() == [2 + 3 + 3, 1 + 3]
    assert result.table["answer_tokens/score"].tolist() == [2, 1]  # 東京 / です, 京都: morphemes
    assert result.metrics["token_count"] == pytest.approx(6.0)


def test_a_wrong_or_missing_file_is_a_clear_error_before_any_call(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    path = _bpe_file(tmp_path / "toy.tiktoken")
    monkeypatch.setenv(tokens.FILE_ENV, str(path))  # the real hash is expected: this file is not cl100k_base
    with pytest.raises(tokens.TokenizerUnavailable, match=r"toy\.tiktoken is not tiktoken's cl100k_base"):
        tokens.token_count("東京")
    monkeypatch.setenv(tokens.FILE_ENV, str(tmp_path / "absent.tiktoken"))
    with pytest.raises(tokens.TokenizerUnavailable, match=r"absent\.tiktoken"):
        tokens.cl100k_base()

    # no file: tiktoken's cache is empty and its download fails (as it does here)
    import tiktoken.load
    import tiktoken.registry

    monkeypatch.delenv(tokens.FILE_ENV)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})

    def offline(blobpath: str) -> bytes:
        raise OSError(f"network unreachable: {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    model = ScriptedModel(answer=lambda prompt: "東京")
    with pytest.raises(tokens.TokenizerUnavailable, match=r"TIKTOKEN_CACHE_DIR.*HYOUKA_TIKTOKEN_FILE"):
        hyouka.evaluate(model, data=[{"inputs": "首都は？"}], metrics=["token_count"],
                        store=f"sqlite:///{tmp_path / 's.sqlite'}", cache=False)
    assert model.calls == []


@pytest.mark.skipif(not os.environ.get(tokens.FILE_ENV), reason="the real cl100k_base file is not at hand")
def test_counts_equal_mlflows_token_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jglue_dir: Path) -> None:
    metrics = pytest.importorskip("mlflow.metrics")
    data = (tmp_path / "cache")
    data.mkdir()
    # MLflow calls tiktoken.get_encoding: give it the same file through tiktoken's own cache
    real = Path(os.environ[tokens.FILE_ENV]).read_bytes()
    real = gzip.decompress(real) if real[:2] == b"\x1f\x8b" else real
    (data / hashlib.sha1(CL100K_URL.encode()).hexdigest()).write_bytes(real)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(data))
    import pandas as pd

    lines = (jglue_dir / "jsts-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8").splitlines()[:300]
    texts = [json.loads(line)["sentence1"] for line in lines]
    texts += ["Hello, world!", "ｆｕｌｌ　ｗｉｄｔｈ １２３", "\n\n改行"]
    theirs = metrics.token_count().eval_fn(pd.Series(texts), None).scores
    assert [tokens.token_count(t) for t in texts] == theirs
    with pytest.raises(ValueError, match="special token"):  # MLflow refuses what hyouka counts as text
        metrics.token_count().eval_fn(pd.Series(["<|endoftext|>"]), None)
    assert tokens.token_count("<|endoftext|>") == 7
