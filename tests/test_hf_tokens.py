"""Joint encoding and the context/continuation boundary rule of the hf: backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyouka.models.hf_tokens import continuation_start, encode_pairs, encode_prompts, special_prefix

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


class SlowView:
    """The same tokenizer, presented as one without offsets (a "slow" tokenizer)."""

    is_fast = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bos_token_id, self.eos_token_id = inner.bos_token_id, inner.eos_token_id

    def __call__(self, texts: Any, **kwargs: Any) -> Any:
        kwargs.pop("return_offsets_mapping", None)
        return self.inner(texts, **kwargs)


def test_continuation_start_rule() -> None:
    # spans: BOS (0,0), "ab" (0,2), "cd" (2,4) -> continuation from index 2 when the context has 2 chars
    assert continuation_start([(0, 0), (0, 2), (2, 4)], 2) == 2
    # a token (1,3) straddles the boundary at 2: it belongs to the continuation
    assert continuation_start([(0, 1), (1, 3), (3, 4)], 2) == 1
    # byte pieces of one character share its span; both stay in the context
    assert continuation_start([(0, 1), (0, 1), (1, 2)], 1) == 2
    assert continuation_start([(0, 1)], 1) == 1  # empty continuation


def test_special_prefix_is_bos(tok) -> None:
    assert special_prefix(tok) == [tok.bos_token_id]


def test_clean_and_merged_boundaries(tok) -> None:
    clean, merged = encode_pairs(tok, [("答え:", "絵本"), ("数", "字")], prefix=[tok.bos_token_id], max_length=64)
    ctx = tok("答え:")["input_ids"]
    assert clean.ids == tok("答え:絵本")["input_ids"] and clean.cont_start == len(ctx) and clean.ref == ctx
    assert merged.ids == tok("数字")["input_ids"] and merged.cont_start == 1  # only BOS is context
    assert merged.ref == tok("数")["input_ids"] != merged.ids[: len(merged.ref)]


def test_slow_tokenizer_falls_back_to_common_prefix(tok) -> None:
    pairs = [("質問：日本の首都は？\n答え:", "東京"), ("答え:", "絵本"), ("", "絵本")]
    fast = encode_pairs(tok, pairs, prefix=[tok.bos_token_id], max_length=64)
    slow = encode_pairs(SlowView(tok), pairs, prefix=[tok.bos_token_id], max_length=64)
    assert [(p.ids, p.cont_start, p.ref) for p in slow] == [(p.ids, p.cont_start, p.ref) for p in fast]


def test_left_truncation_keeps_the_continuation(tok) -> None:
    context, continuation = "質問：主に子ども向けのもので、イラストのついた物語が書かれているものはどれ？", "絵本"
    full = encode_pairs(tok, [(context, continuation)], prefix=[tok.bos_token_id], max_length=2048)[0]
    cut = encode_pairs(tok, [(context, continuation)], prefix=[tok.bos_token_id], max_length=10)[0]
    assert len(cut.ids) == 11 and cut.ids == full.ids[-11:]
    assert cut.ids[cut.cont_start :] == full.ids[full.cont_start :]
    assert cut.ref == full.ref[cut.dropped :]
    too_long = encode_pairs(tok, [("a", continuation * 8)], prefix=[tok.bos_token_id], max_length=4)[0]
    assert too_long.error and "max length" in too_long.error


def test_prompts_leave_room_for_new_tokens(tok) -> None:
    ids = tok("質問：日本の首都は？")["input_ids"]
    assert len(ids) < 16
    room_ok, cut, none = encode_prompts(
        tok, ["質問：日本の首都は？"] * 3, prefix=[tok.bos_token_id], room=[4, 23 - len(ids), 20], max_length=20
    )
    assert room_ok == ids
    assert cut == ids[3:]  # left-truncated so that 23 - len(ids) new tokens fit in 20
    assert none is None
