"""Japanese generation metrics: tokenizer, ROUGE, BLEU, chrF, character ratio."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hyouka.metrics import text
from hyouka.metrics.text import (
    TOKENIZER_NAME,
    answer_length_tokens,
    bleu,
    chrf,
    japanese_char_ratio,
    lcs_length,
    rouge_l,
    rouge_n,
    tokenize_ja,
    tokenizer_info,
)

SENTENCE = "吾輩は猫である。名前はまだ無い。"

# a small corpus in the style of Japanese summarisation / MT references
HYPS = [
    "今日は良い天気です。",
    "東京は日本の首都であり、人口が最も多い都市です。",
    "猫がソファの上で寝ている。",
    "",
    "会議は午後三時に始まります",
    "富士山は日本で一番高い山だ。",
]
REFS = [
    "今日はいい天気ですね。",
    "日本の首都は東京で、最も人口の多い都市です。",
    "ソファの上で猫が眠っている。",
    "何もない。",
    "会議は15時に始まります。",
    "日本で最も高い山は富士山です。",
]


def test_tokenize_ja_splits_morphemes_and_drops_whitespace() -> None:
    assert tokenize_ja("今日は良い天気です。") == ["今日", "は", "良い", "天気", "です", "。"]
    assert tokenize_ja("東京\u3000タワー  です") == ["東京", "タワー", "です"]
    assert tokenize_ja("") == [] and tokenize_ja(" \n\u3000") == []
    assert answer_length_tokens(SENTENCE) == len(tokenize_ja(SENTENCE)) > 5
    assert answer_length_tokens(None) == 0


def test_tokenizer_name_is_exposed() -> None:
    info = tokenizer_info()
    assert TOKENIZER_NAME == info["name"] == "fugashi-unidic-lite"
    assert info["fugashi"] != "unknown" and info["unidic-lite"] != "unknown"


def test_empty_tokenization_of_real_text_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "_tagger", lambda dictionary="unidic-lite": lambda s: [])
    with pytest.raises(ValueError, match=TOKENIZER_NAME):
        tokenize_ja("東京")


def test_tokenizer_is_usable_from_threads() -> None:
    expected = tokenize_ja(SENTENCE)
    results: list[list[str]] = []

    def work() -> None:
        for _ in range(50):
            results.append(tokenize_ja(SENTENCE))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200 and all(r == expected for r in results)


def test_identical_japanese_scores_one_and_unrelated_near_zero() -> None:
    for metric in (rouge_l, lambda p, r: rouge_n(p, r, 1), lambda p, r: rouge_n(p, r, 2)):
        assert metric(SENTENCE, SENTENCE) == 1.0
        assert metric("量子力学の基礎方程式", "昨日カレーライスを食べた") == 0.0
    assert bleu([SENTENCE], [SENTENCE]) == pytest.approx(1.0)
    assert chrf([SENTENCE], [SENTENCE]) == pytest.approx(1.0)
    assert chrf(["量子力学の基礎方程式"], ["昨日カレーライスを食べた"]) < 0.05


def test_rouge_hand_worked() -> None:
    # pred: 東京 / は / 大きい (3), ref: 東京 / は / 小さい / です (4)
    pred, ref = "東京は大きい", "東京は小さいです"
    assert tokenize_ja(pred) == ["東京", "は", "大きい"]
    assert tokenize_ja(ref) == ["東京", "は", "小さい", "です"]
    # unigrams overlap 2: P=2/3, R=2/4 -> F = 4/7 ; bigram overlap 1 (東京 は): P=1/2, R=1/3 -> F = 0.4
    assert rouge_n(pred, ref, 1) == pytest.approx(4 / 7)
    assert rouge_n(pred, ref, 2) == pytest.approx(0.4)
    assert rouge_l(pred, ref) == pytest.approx(4 / 7)  # LCS = 2
    # word order matters for ROUGE-L, not ROUGE-1
    assert rouge_n("猫が犬を追う", "犬を猫が追う", 1) == 1.0
    assert rouge_l("猫が犬を追う", "犬を猫が追う") < 1.0


def test_rouge_multiple_references_and_edge_cases() -> None:
    assert rouge_l("東京は大きい", ["大阪です", "東京は大きい"]) == 1.0
    assert rouge_n("東京", "東京", 2) == 0.0  # no bigrams: rouge-score convention
    assert rouge_l("", "東京") == 0.0
    with pytest.raises(ValueError):
        rouge_l("東京", [])


def _lcs_dp(a: list, b: list) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_bit_parallel_lcs_matches_dynamic_programming() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.integers(0, 4, rng.integers(0, 40)).tolist()
        b = rng.integers(0, 4, rng.integers(0, 40)).tolist()
        assert lcs_length(a, b) == _lcs_dp(a, b)


def test_bleu_hand_worked_brevity_and_short_text() -> None:
    ref = "吾輩は猫である。名前はまだ無い。"
    tokens = tokenize_ja(ref)
    prefix = "".join(tokens[:8])  # all n-grams match; only the brevity penalty applies
    expected = np.exp(1 - len(tokens) / 8)
    assert bleu([prefix], [ref]) == pytest.approx(expected)
    assert bleu(["猫"], ["猫"]) == 0.0  # no 4-gram at all: BLEU is 0, as in sacreBLEU
    assert bleu([None], [ref]) == 0.0


def test_bleu_and_chrf_match_sacrebleu() -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    hyp_tok = [" ".join(tokenize_ja(h)) for h in HYPS]
    ref_tok = [" ".join(tokenize_ja(r)) for r in REFS]
    expected_bleu = sacrebleu.corpus_bleu(hyp_tok, [ref_tok], tokenize="none").score / 100
    assert bleu(HYPS, REFS) == pytest.approx(expected_bleu, abs=1e-12)
    assert chrf(HYPS, REFS) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score / 100, abs=1e-12)

    # several references per item (sacreBLEU takes them as parallel streams)
    refs2 = ["今日は晴れです。", "東京は日本の首都です。", "猫が寝ている。", "空", "会議は三時から", "富士山は高い。"]
    ref2_tok = [" ".join(tokenize_ja(r)) for r in refs2]
    multi = [[a, b] for a, b in zip(REFS, refs2, strict=True)]
    expected_bleu = sacrebleu.corpus_bleu(hyp_tok, [ref_tok, ref2_tok], tokenize="none").score / 100
    assert bleu(HYPS, multi) == pytest.approx(expected_bleu, abs=1e-12)
    expected_chrf = sacrebleu.corpus_chrf(HYPS, [REFS, refs2]).score / 100
    assert chrf(HYPS, multi) == pytest.approx(expected_chrf, abs=1e-12)

    # a case where exponential smoothing kicks in (no 4-gram match anywhere)
    h, r = ["猫が走る姿を見た"], ["犬が走る様子を見た"]
    expected_bleu = sacrebleu.corpus_bleu(
        [" ".join(tokenize_ja(h[0]))], [[" ".join(tokenize_ja(r[0]))]], tokenize="none"
    ).score
    assert expected_bleu > 0
    assert bleu(h, r) == pytest.approx(expected_bleu / 100, abs=1e-12)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("今日は晴れです。", 1.0),  # punctuation does not count against Japanese
        ("Hello, world!", 0.0),
        ("ＡＩと機械学習", 5 / 7),  # full-width Latin is Latin
        ("ｶﾀｶﾅ々〆", 1.0),
        ("", 0.0),
        (None, 0.0),
        ("。、・", 0.0),
    ],
)
def test_japanese_char_ratio(value: str | None, expected: float) -> None:
    assert japanese_char_ratio(value) == pytest.approx(expected)


def test_ipadic_bleu_equals_sacrebleu_ja_mecab(jglue_dir) -> None:
    """bleu_ja_mecab / sentence_bleu_ja_mecab against sacreBLEU's own ja-mecab tokenizer (MeCab + IPADIC)."""
    import json

    from hyouka.metrics.registry import aggregate, sample_score

    sacrebleu = pytest.importorskip("sacrebleu")
    ja_mecab = pytest.importorskip("sacrebleu.tokenizers.tokenizer_ja_mecab").TokenizerJaMecab()
    lines = (jglue_dir / "jsts-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8").splitlines()[:200]
    rows = [json.loads(line) for line in lines]
    hyps = [r["sentence2"] for r in rows] + [*HYPS, "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ と 半角 abc。", "猫"]
    refs = [r["sentence1"] for r in rows] + [*REFS, "Full-width ABC と半角ABC。", "猫"]
    for line in hyps + refs:
        assert tokenize_ja(line, "ipadic") == ja_mecab(line).split()
    assert any(tokenize_ja(line, "ipadic") != tokenize_ja(line) for line in refs)  # the dictionaries differ
    expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="ja-mecab").score / 100
    assert aggregate("bleu_ja_mecab", hyps, refs, n_resamples=0).value == pytest.approx(expected, abs=1e-12)
    assert bleu(hyps, refs, dictionary="ipadic") == pytest.approx(expected, abs=1e-12)
    sentence = sacrebleu.metrics.BLEU(tokenize="ja-mecab", effective_order=True)
    for h, r in zip(hyps, refs, strict=True):
        assert sample_score("sentence_bleu_ja_mecab", h, r) == pytest.approx(
            sentence.sentence_score(h, [r]).score / 100, abs=1e-12)
    with pytest.raises(ValueError, match="unknown dictionary"):
        tokenize_ja("猫", "juman")
