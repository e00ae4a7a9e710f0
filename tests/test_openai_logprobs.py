"""Reading continuation log-likelihoods from echoed prompt log-probabilities, and retry timing."""

from __future__ import annotations

import pytest

from hyouka.models.openai_logprobs import PromptLogprobsUnavailableError, span_logprob
from hyouka.models.openai_retry import backoff, retry_after


def _lp(logprobs: list[float | None], top: list[dict[str, float] | None] | None = None) -> dict:
    # vLLM's offsets and token strings are deliberately useless here: the span is found by position alone
    return {"tokens": ["<s>"] + [""] * (len(logprobs) - 1), "token_logprobs": logprobs,
            "text_offset": [0] * len(logprobs), "top_logprobs": top}


def test_sums_the_tokens_of_the_span_by_position() -> None:
    lp = _lp([None, -1.0, -2.0, -0.5, -0.25])
    assert span_logprob(lp, 3, 5) == (pytest.approx(-0.75), None)
    assert span_logprob(lp, 1, 3) == (pytest.approx(-3.0), None)


def test_generated_tokens_after_the_prompt_are_ignored() -> None:
    assert span_logprob(_lp([None, -1.0, -2.0, -3.0]), 2, 3)[0] == pytest.approx(-2.0)


def test_is_greedy_compares_with_the_top_token() -> None:
    top = [None, {"A": -1.0}, {"B": -0.1, "X": -0.5}, {"C": -0.2}]
    lp = _lp([None, -1.0, -0.5, -0.2], top)
    assert span_logprob(lp, 2, 4)[1] is False
    assert span_logprob(lp, 3, 4)[1] is True


def test_no_prompt_logprobs_is_reported() -> None:
    with pytest.raises(PromptLogprobsUnavailableError, match="--mode generate"):
        span_logprob(None, 1, 2)
    with pytest.raises(PromptLogprobsUnavailableError):
        span_logprob({"tokens": ["a"], "token_logprobs": None, "text_offset": None}, 1, 2)


def test_a_short_answer_or_an_unscored_token_is_an_error() -> None:
    with pytest.raises(ValueError, match="scored 2 prompt tokens, 3 were sent"):
        span_logprob(_lp([None, -1.0]), 1, 3)
    with pytest.raises(ValueError, match="no log-probability"):
        span_logprob(_lp([None, -1.0]), 0, 2)


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
