"""A 200 answer that is garbage (truncated JSON, an HTML page, no choices) fails its sample, not the run.

The fault server sends each body through real HTTP to the real ``openai`` client, on every route a
run takes: completions, chat, streamed generation and log-likelihoods.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hyouka
from hyouka.store.store import Store
from hyouka.tasks.loaders import read_jsonl
from hyouka.testing.openai_server import EchoModel, RequestInfo, ServerStats, garbage, serve_openai

ROUTES = {
    "completions": {"mode": "generate"},
    "chat": {"mode": "generate", "chat": True},
    "stream": {"mode": "generate", "stream": True},
    "loglikelihood": {"mode": "loglikelihood"},
}


@pytest.fixture(scope="module")
def questions(jglue_dir: Path) -> list[str]:
    docs = read_jsonl(jglue_dir / "jcommonsenseqa-v1.3" / "valid-v1.3.json")
    return [d["question"] for d in docs[:3]]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("kind", ["truncated_json", "html", "no_choices", "truncated_stream"])
def test_garbage_bodies_fail_their_sample_and_the_run_goes_on(
    tmp_path: Path, jglue_dir: Path, questions: list[str], kind: str, route: str
) -> None:
    if kind == "truncated_stream" and route != "stream":
        pytest.skip("an event stream is only sent for streamed requests")
    broken, flaky = questions[1], questions[2]

    def when(info: RequestInfo) -> bool:  # question 1 always gets garbage, question 2 on its first attempt only
        return broken in info.prompt or (flaky in info.prompt and info.attempt == 1)

    stats = ServerStats()
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    options = dict(ROUTES[route])
    with serve_openai(EchoModel(), fail=garbage(kind, when=when), stats=stats) as url:
        result = hyouka.run(
            "openai:echo", "jcommonsenseqa", limit=3, data_dir=jglue_dir, store=store, cache=False,
            base_url=url, max_retries=2, backoff_s=0.01, concurrency=2, **options,
        )
    run = result.runs[0]
    assert run.status == "completed" and run.n_samples == 3
    samples = {s["sample_index"]: s for s in store.samples(run.run_id)}
    assert samples[1]["status"] == "api_error" and "malformed response" in samples[1]["error"], samples[1]["error"]
    assert samples[0]["status"] != "api_error" and samples[2]["status"] != "api_error"
    # retried like a server error: 1 + max_retries attempts for the broken question, 2 for the flaky one
    path = "chat/completions" if route == "chat" else "completions"
    attempts = {prompt: n for (p, prompt), n in stats.attempts.items() if p == path}
    assert max(n for prompt, n in attempts.items() if broken in prompt) == 3
    assert max(n for prompt, n in attempts.items() if flaky in prompt) == 2
    assert run.extra["statuses"].get("api_error") == 1
