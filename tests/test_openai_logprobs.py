"""Reading continuation log-likelihoods from echoed prompt log-probabilities, and retry timing."""

from __future__ import annotations

import pytest

from hyouka.models.openai_logprobs import PromptLogprobsUnavailableError, continuation_logprob
from hyouka.models.openai_retry import backoff, retry_after


def _lp(tokens: list[str], logprobs: list[float | None], top: list[dict[str, float] | None] | None = None):
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    return {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets, "top_logprobs": top}


def test_sums_the_tokens_inside_the_continuation_and_skips_bos() -> None:
    lp = _lp(["", "今日", "は", "晴れ", "です"], [None, -1.0, -2.0, -0.5, -0.25])
    assert continuation_logprob(lp, "今日は", "晴れです") == (pytest.approx(-0.75), None)
    assert continuation_logprob(lp, "", "今日は") == (pytest.approx(-3.0), None)


def test_a_token_straddling_the_boundary_counts_for_the_continuation() -> None:
    lp = _lp(["", "今", "日は", "晴れ"], [None, -1.0, -2.0, -0.5])  # "日は" spans context "今日" + "は"
    total, _ = continuation_logprob(lp, "今日", "は晴れ")
    assert total == pytest.approx(-2.5)


def test_generated_tokens_after_the_prompt_are_ignored() -> None:
    lp = _lp(["", "猫", "が", "鳴く"], [None, -1.0, -2.0, -3.0])
    assert continuation_logprob(lp, "猫", "が")[0] == pytest.approx(-2.0)


def test_is_greedy_compares_with_the_top_token() -> None:
    top = [None, {"A": -1.0}, {"B": -0.1, "X": -0.5}, {"C": -0.2}]
    lp = _lp(["", "A", "X", "C"], [None, -1.0, -0.5, -0.2], top)
    assert continuation_logprob(lp, "A", "XC")[1] is False
    assert continuation_logprob(lp, "AX", "C")[1] is True


def test_no_prompt_logprobs_is_reported() -> None:
    with pytest.raises(PromptLogprobsUnavailableError, match="--mode generate"):
        continuation_logprob(None, "a", "b")
    with pytest.raises(PromptLogprobsUnavailableError):
        continuation_logprob({"tokens": ["a"], "token_logprobs": None, "text_offset": None}, "a", "b")


def test_an_unscored_first_token_in_the_continuation_is_an_error() -> None:
    with pytest.raises(ValueError, match="no log-probability"):
        continuation_logprob(_lp(["今日", "は"], [None, -1.0]), "", "今日は")


def test_retry_after_headers() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    for attempt in range(6):
        assert 0.5 * min(30.0, 2**attempt) <= backoff(attempt, base_s=1.0) <= min(30.0, 2**attempt)
    assert 3.0 <= backoff(0, base_s=1.0, retry_after_s=3.0) <= 3.6
