"""A judge whose context is shorter than a judgment needs (issue 10 item 8).

The judge is served by our test server made to refuse over-long requests as vLLM 0.32 does
with ``--max-model-len`` (HTTP 400, vLLM's body and words, from its ``vllm/renderers/params.py``,
compared with a running vLLM 0.32 server's answers); characters stand for tokens (:class:`EchoModel`).
MT-Bench judge prompts here are 1,886 to 4,817 characters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import hyouka
from hyouka.cli import app
from hyouka.judge.context import JudgeContextError, context_overflow
from hyouka.store.store import Store
from hyouka.testing.openai_server import EchoModel, ServerStats, serve_openai

# the servers' own words, as they send them
VLLM_BUDGET = ("max_tokens=2048 cannot be greater than max_model_len=2000. Please request fewer output tokens. "
               "(parameter=max_tokens, value=2048)")
VLLM_PROMPT = ("This model's maximum context length is 2048 tokens. However, your prompt contains at least 2049 "
               "input tokens, which exceeds this limit even without any output tokens. Please reduce the length of "
               "the input prompt. (parameter=input_tokens, value=2049)")
VLLM_OLD = ("This model's maximum context length is 4096 tokens. However, you requested 5144 tokens (3096 in the "
            "messages, 2048 in the completion). Please reduce the length of the messages or completion.")
OPENAI = ("This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. "
          "Please reduce the length of the messages.")


@pytest.mark.parametrize(
    ("error", "context", "prompt", "budget", "hopeless"),
    [
        (f"HTTP 400: {VLLM_BUDGET}", 2000, None, 2048, True),
        (f"HTTP 400: {VLLM_PROMPT}", 2048, 2049, None, False),
        (f"HTTP 400: {VLLM_OLD}", 4096, 3096, 2048, False),
        (f"HTTP 400: {OPENAI}", 8192, 9000, None, False),
    ],
)
def test_context_refusals_are_read(error: str, context: int, prompt: int | None, budget: int | None,
                                   hopeless: bool) -> None:
    found = context_overflow(error)
    assert found is not None
    assert (found.context, found.prompt_tokens, found.max_tokens, found.budget_too_large) == (
        context, prompt, budget, hopeless)


def test_other_errors_are_not_context_refusals() -> None:
    assert context_overflow("HTTP 500: backend failed") is None
    assert context_overflow("HTTP 400: messages must be a list of {role, content}") is None
    assert context_overflow(None) is None


def _run(mt_bench_dir: Path, url: str, store: Store, **options: object) -> hyouka.EvalResult:
    answers = mt_bench_dir / "model_answer" / "gpt-4.jsonl"
    return hyouka.run(f"recorded:{answers}", "ja_mt_bench", judge="openai:judge", judge_options={"base_url": url},
                      data_dir=mt_bench_dir, limit=2, store=store, cache=False, **options)  # type: ignore[arg-type]


def test_a_budget_longer_than_the_judge_context_stops_with_a_clear_error(
    mt_bench_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    stats = ServerStats()
    with serve_openai(EchoModel("Rating: [[7]]"), model_name="judge", max_model_len=2000, stats=stats) as url:
        with pytest.raises(JudgeContextError) as caught:
            _run(mt_bench_dir, url, store)  # the default judge max_tokens, 2048
        message = str(caught.value)
        assert "judge has a context of 2000 tokens" in message
        assert "--judge-max-tokens (judge_max_tokens=) is 2048" in message
        assert "the prompt is" in message and "characters" in message
        assert "cannot be greater than max_model_len=2000" in message  # the server's own words kept
        assert stats.by_status[400] >= 1 and stats.by_status[200] == 0
        (failed,) = store.list_runs()
        assert failed["status"] == "failed" and "judge has a context of 2000 tokens" in failed["error"]

        # the option, smaller: judgments whose prompt fits are made; the others say why not
        result = _run(mt_bench_dir, url, store, judge_max_tokens=64)
    run = result.runs[0]
    samples = {s["doc_id"]: s for s in store.samples(run.run_id)}
    assert samples["2:1"]["status"] == "ok" and samples["2:1"]["prediction"] == 7.0  # 1,886 characters
    for doc_id, length in (("1:1", 2051), ("1:2", 4816), ("2:2", 3680)):  # system + user message
        assert samples[doc_id]["status"] == "context_exceeded"
        error = samples[doc_id]["error"]
        assert f"the prompt is at least 2001 tokens ({length} characters)" in error
        assert "context of 2000 tokens" in error
        assert "use a judge with a longer context" in error
    assert run.aggregates["score"]["n_scored"] == 1 and run.aggregates["score"]["n_total"] == 4
    assert store.get_run(run.run_id)["config"]["judge_max_tokens"] == 64


def test_judge_max_tokens_on_the_command_line(mt_bench_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    answers = mt_bench_dir / "model_answer" / "gpt-4.jsonl"
    store = f"sqlite:///{tmp_path / 'results.sqlite'}"
    runner = CliRunner()
    with serve_openai(EchoModel("Rating: [[6]]"), model_name="judge", max_model_len=4000) as url:
        args = ["run", "--model", f"recorded:{answers}", "--tasks", "ja_mt_bench", "--judge", "openai:judge",
                "--judge-base-url", url, "--data-dir", str(mt_bench_dir), "--limit", "1", "--no-cache",
                "--store", store]
        refused = runner.invoke(app, [*args, "--judge-max-tokens", "4096"], env={"COLUMNS": "300"})
        assert refused.exit_code == 2
        assert "context of 4000 tokens" in refused.output and "--judge-max-tokens" in refused.output
        done = runner.invoke(app, [*args, "--judge-max-tokens", "512"], env={"COLUMNS": "300"})
    assert done.exit_code == 0, done.output
    (run,) = [r for r in Store(store).list_runs() if r["status"] == "completed"]
    assert run["config"]["judge_max_tokens"] == 512
    assert Store(store).aggregates(run["id"])["score"]["value"] == 6.0
