"""Answer normalisation, exact match and character F1."""

from __future__ import annotations

from collections import Counter

import pytest

from hyouka.metrics.normalize import nfkc, normalize_answer
from hyouka.metrics.qa import char_f1, exact_match


def test_nfkc_folds_full_width_and_half_width_kana() -> None:
    assert nfkc("ＡＢＣ１２３") == "ABC123"
    assert nfkc("ﾃｽﾄ") == "テスト"
    assert nfkc("㍻") == "平成"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),
        ("「東京タワー」です。", "東京タワーです"),
        ("  Tokyo Tower!? ", "tokyotower"),
        ("『源氏物語』（げんじものがたり）、紫式部・作", "源氏物語げんじものがたり紫式部作"),
        ("東京\u3000タワー\t\n", "東京タワー"),
        ("zero\u200bwidth", "zerowidth"),
        ("Ａ＋Ｂ＝Ｃ＄", "abc"),
        ("ラーメン", "ラーメン"),  # the long-vowel mark is a letter, not punctuation
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_exact_match_after_nfkc_and_punctuation() -> None:
    assert exact_match("ＡＢＣ１２３", ["ABC123"]) == 1.0
    assert exact_match("「東京」。", "東京") == 1.0
    assert exact_match("東京都", ["東京"]) == 0.0


def test_exact_match_takes_any_gold_and_handles_none() -> None:
    assert exact_match("大阪", ["東京", "おおさか", "大阪"]) == 1.0
    assert exact_match(None, ["東京"]) == 0.0
    with pytest.raises(ValueError):
        exact_match("x", [])


def _reference_char_f1(pred: str, gold: str) -> float:
    """Textbook SQuAD F1 with characters as tokens."""
    p, g = Counter(pred), Counter(gold)
    common = sum(min(p[c], g[c]) for c in p)
    if common == 0:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def test_char_f1_hand_worked() -> None:
    # pred 東京都庁 (4 chars), gold 東京 (2 chars): overlap 2, P = 0.5, R = 1, F1 = 2/3
    assert char_f1("東京都庁", ["東京"]) == pytest.approx(2 / 3)
    # repeated characters are clipped: pred ああい vs gold あい -> overlap 2, P = 2/3, R = 1 -> 0.8
    assert char_f1("ああい", "あい") == pytest.approx(0.8)
    assert char_f1("東京", ["大阪"]) == 0.0


@pytest.mark.parametrize(
    ("pred", "gold"),
    [("1868年（明治元年）", "明治元年"), ("ＪＲ東日本", "JR東日本です"), ("さくらさくら", "さくら"), ("abc", "cab")],
)
def test_char_f1_matches_reference(pred: str, gold: str) -> None:
    expected = _reference_char_f1(normalize_answer(pred), normalize_answer(gold))
    assert char_f1(pred, [gold]) == pytest.approx(expected)


def test_char_f1_max_over_golds_and_edge_cases() -> None:
    assert char_f1("東京", ["大阪", "東京駅", "東京"]) == 1.0
    assert char_f1("東京", ["東京駅"]) == pytest.approx(0.8)
    assert char_f1(None, ["東京"]) == 0.0
    assert char_f1("。", ["、"]) == 1.0  # both normalise to empty: nothing to disagree on
    assert char_f1("", ["東京"]) == 0.0
