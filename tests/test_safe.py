"""Which configuration keys are secrets: credentials are redacted, token counts are not."""

from __future__ import annotations

from hyouka.report.safe import REDACTED, is_secret_key, scrub


def test_token_counts_are_not_secrets_but_tokens_are() -> None:
    for key in ("max_tokens", "judge_max_tokens", "prompt_tokens", "completion_tokens", "api_key_env"):
        assert not is_secret_key(key), key
    for key in ("token", "hf_token", "HF_TOKEN", "api_key", "OPENAI_API_KEY", "password", "credentials"):
        assert is_secret_key(key), key
    assert scrub({"max_tokens": 128, "auth_token": "t0k"}) == {"max_tokens": 128, "auth_token": REDACTED}
