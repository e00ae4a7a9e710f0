"""Budget: dry runs estimate before any call; --max-cost refuses, stops before the ceiling, and resumes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.api import estimate
from hyouka.cli import app
from hyouka.engine.budget import Budget, BudgetExceededError, MeteredModel
from hyouka.engine.cache import ResponseCache
from hyouka.models.base import GenerateRequest, GenerationParams, collect
from hyouka.pricing.table import Price
from hyouka.store.store import Store
from tests.test_accounting import INPUT_PRICE, OUTPUT_PRICE, UsageModel


@pytest.fixture()
def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(f"models:\n  usage-model: {{input: {INPUT_PRICE}, output: {OUTPUT_PRICE}}}\n"
                    "  echo: {input: 1000, output: 1000}\n", encoding="utf-8")
    return path


def test_dry_run_counts_calls_tokens_and_cost_without_calling(
    jglue_dir: Path, store: Store, cache: ResponseCache, price_file: Path
) -> None:
    model = UsageModel()
    plan = estimate(model, "jcommonsenseqa", limit=10, data_dir=jglue_dir, store=store, cache=cache,
                    prices=price_file)
    assert model.calls == []
    (task,) = plan.tasks
    assert task.mode == "loglikelihood" and task.n_docs == 10 and task.n_calls == task.n_requests == 50

    hyouka.run(model, "jcommonsenseqa", limit=10, data_dir=jglue_dir, store=store, cache=cache, prices=price_file)
    sent = [r for r, _ in model.calls]
    assert task.prompt_tokens == sum(len(r.context + r.continuation) for r in sent)
    assert plan.cost_usd == pytest.approx(sum((len(r.context + r.continuation) * INPUT_PRICE + OUTPUT_PRICE) / 1e6
                                              for r in sent))
    assert plan.price is not None and plan.price["key"] == "usage-model"

    # Everything is cached now: the same run would cost nothing.
    again = estimate(model, "jcommonsenseqa", limit=10, data_dir=jglue_dir, store=store, cache=cache,
                     prices=price_file)
    assert again.tasks[0].n_cached == 50 and again.n_calls == 0 and again.cost_usd == 0.0


def test_generation_estimate_is_an_upper_bound(jglue_dir: Path, store: Store, price_file: Path) -> None:
    model = UsageModel()
    plan = estimate(model, "jnli", mode="generate", limit=8, data_dir=jglue_dir, store=store, cache=False,
                    prices=price_file)
    assert plan.max_completion_tokens == 8 * 8  # jnli's max_tokens per answer
    hyouka.run(model, "jnli", mode="generate", limit=8, data_dir=jglue_dir, store=store, cache=False,
               prices=price_file)
    assert model.cost_of_calls() <= plan.cost_usd


def test_max_cost_refuses_to_start_above_the_ceiling(
    jglue_dir: Path, store: Store, cache: ResponseCache, price_file: Path
) -> None:
    model = UsageModel()
    plan = estimate(model, "jnli", mode="generate", limit=20, data_dir=jglue_dir, store=store, cache=cache,
                    prices=price_file)
    with pytest.raises(BudgetExceededError, match="above --max-cost"):
        hyouka.run(model, "jnli", mode="generate", limit=20, data_dir=jglue_dir, store=store, cache=cache,
                   prices=price_file, max_cost=plan.cost_usd * 0.5)
    assert model.calls == [] and store.list_runs() == []


def test_max_cost_without_a_price_refuses(jglue_dir: Path, store: Store) -> None:
    model = UsageModel(name="unpriced")
    with pytest.raises(BudgetExceededError, match="no entry"):
        hyouka.run(model, "jnli", mode="generate", limit=3, data_dir=jglue_dir, store=store, cache=False,
                   max_cost=1.0)
    assert model.calls == []


def test_max_cost_stops_before_the_ceiling_and_the_run_resumes(
    jglue_dir: Path, store: Store, cache: ResponseCache, price_file: Path
) -> None:
    # The API bills three times the tokens the tokenizer counts (a template's overhead, say), so the
    # estimate passes the ceiling check but the run could not finish under it.
    model = UsageModel(prompt_factor=3)
    plan = estimate(model, "jnli", mode="generate", limit=40, data_dir=jglue_dir, store=store, cache=cache,
                    prices=price_file)
    ceiling = plan.cost_usd * 1.2
    with pytest.raises(BudgetExceededError, match="resumes"):
        hyouka.run(model, "jnli", mode="generate", limit=40, data_dir=jglue_dir, store=store, cache=cache,
                   prices=price_file, max_cost=ceiling)
    spent = model.cost_of_calls()
    assert 0 < spent <= ceiling
    (stopped,) = store.list_runs()
    assert stopped["status"] == "interrupted" and "BudgetExceededError" in stopped["error"]
    finished = store.finished_indices(stopped["id"])
    assert 0 < len(finished) < 40 and len(finished) == len(model.calls)  # every paid answer is kept
    assert math.fsum(s["cost_usd"] for s in store.samples(stopped["id"])) == pytest.approx(spent)

    resumed_model = UsageModel(prompt_factor=3)
    result = hyouka.run(resumed_model, "jnli", mode="generate", limit=40, data_dir=jglue_dir, store=store,
                        cache=cache, prices=price_file)["jnli"]
    assert result.run_id == stopped["id"] and result.resumed
    first = {r.prompt for r, _ in model.calls}
    assert not first & {r.prompt for r, _ in resumed_model.calls}  # nothing paid twice
    assert len(model.calls) + len(resumed_model.calls) == 40
    assert store.get_run(result.run_id)["status"] == "completed"
    assert result.extra["accounting"]["cost_usd"] == pytest.approx(spent + resumed_model.cost_of_calls())


def test_metered_model_sends_chunks_that_fit_and_learns_from_overruns() -> None:
    inner = UsageModel(prompt_factor=2)
    price = Price(input=1e6, output=0.0)  # one dollar per prompt token
    metered = MeteredModel(inner, price, Budget(ceiling=100.0))
    requests = [GenerateRequest("x" * 10, GenerationParams(max_tokens=1)) for _ in range(20)]
    with pytest.raises(BudgetExceededError):
        collect(metered.generate(requests), len(requests))
    assert metered.budget.spent <= 100.0
    assert len(inner.calls) == 5  # 20 dollars each, billed; estimated 10 and then corrected


def test_cli_dry_run_and_refusal(jglue_dir: Path, hyouka_home: Path, price_file: Path) -> None:
    pytest.importorskip("fastapi")
    from hyouka.testing.openai_server import EchoModel, ServerStats, serve_openai

    runner = CliRunner()
    stats = ServerStats()
    with serve_openai(EchoModel(reply="中立"), stats=stats) as url:
        common = ["--model", "openai:echo", "--base-url", url, "--tasks", "jnli", "--mode", "generate",
                  "--limit", "5", "--data-dir", str(jglue_dir), "--prices", str(price_file)]
        dry = runner.invoke(app, ["run", *common, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "dry run" in dry.output and "total" in dry.output and "$" in dry.output
        refused = runner.invoke(app, ["run", *common, "--max-cost", "0.0001"])
        assert refused.exit_code == 3 and "above --max-cost" in refused.output
    assert stats.requests == 0  # neither command called the model
