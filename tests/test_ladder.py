"""The prompting ladder over scripted models behind the real OpenAI-compatible test server.

Scores and costs are known by construction (tests/ladder_fakes.py): a student of skill ``s``
answers question ``i`` right when ``i % 5 <= s + shots``; it reports ``100 * (1 + shots)`` prompt
and 10 completion tokens, priced by the test's price file. ``small`` (skill 0, $1/$2 per million
tokens) and ``large`` (skill 1, $10/$20) climb zero-shot, few-shot:1 and few-shot:3:

    cell              score  cost / 1,000 questions
    small zero-shot   0.2    $0.12
    small few-shot:1  0.4    $0.22
    small few-shot:3  0.8    $0.42
    large zero-shot   0.4    $1.20   (dominated by small few-shot:1)
    large few-shot:1  0.6    $2.20   (dominated by small few-shot:3; mean above 0.55, interval not)
    large few-shot:3  1.0    $4.20
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.evaluation.ladder import (
    Goal,
    LadderError,
    RungError,
    load_rungs,
    paired_difference,
    parse_rungs,
)
from hyouka.testing.openai_server import ServerStats, serve_openai
from tests.judge_fakes import ScriptedJudge
from tests.ladder_fakes import (
    Student,
    correctness_judge,
    expected_cost_per_1k,
    expected_score,
    rag_documents,
    write_jsquad,
    write_prices,
    write_qa,
)

PRICES = {"small": (1.0, 2.0), "large": (10.0, 20.0), "ft": (3.0, 6.0), "judge": (5.0, 5.0)}
SKILL = {"small": 0, "large": 1, "ft": 4}
RUNGS = "zero-shot,few-shot:1,few-shot:3"


@dataclass
class Setup:
    tmp: Path
    urls: dict[str, str]
    stats: dict[str, ServerStats]
    students: dict[str, Student]
    prices: Path
    jsquad: Path
    qa: Path

    @property
    def store(self) -> str:
        return f"sqlite:///{self.tmp / 'results.sqlite'}"

    def models(self, *names: str) -> dict[str, dict[str, Any]]:
        return {f"openai:{n}": {"base_url": self.urls[n]} for n in names}

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        return {"store": self.store, "cache": self.tmp / "cache.sqlite", "prices": self.prices, **extra}

    def bench(self, **extra: Any) -> dict[str, Any]:
        return self.kwargs(metric="char_f1", data_files={"jsquad": self.jsquad}, **extra)

    def requests(self, name: str) -> int:
        return self.stats[name].requests


@pytest.fixture()
def setup(tmp_path: Path) -> Iterator[Setup]:
    students = {name: Student(name, skill) for name, skill in SKILL.items()}
    stats = {name: ServerStats() for name in (*SKILL, "judge")}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(serve_openai(students[name], stats=stats[name],
                                                       delay_s=0.2 if name == "large" else 0.0))
                for name in SKILL}
        urls["judge"] = stack.enter_context(serve_openai(ScriptedJudge(correctness_judge, name="judge"),
                                                         stats=stats["judge"]))
        yield Setup(tmp_path, urls, stats, students, write_prices(tmp_path / "prices.yaml", PRICES),
                    write_jsquad(tmp_path / "jsquad.json"), write_qa(tmp_path / "qa.jsonl"))


# -- rungs as data ----------------------------------------------------------------------------
def test_rungs_from_the_shorthand_and_a_yaml_file(tmp_path: Path) -> None:
    rungs = parse_rungs("zero-shot,few-shot:3,rag:4,few-shot:3+rag:4,2-shot")
    assert [(r.name, r.fewshot, r.rag) for r in rungs] == [
        ("zero-shot", 0, None), ("few-shot:3", 3, None), ("rag:4", 0, 4), ("few-shot:3+rag:4", 3, 4),
        ("2-shot", 2, None)]
    path = tmp_path / "rungs.yaml"
    path.write_text("rungs:\n  - zero-shot\n  - {name: 丁寧, fewshot: 2, system_prompt: 丁寧に答えてください。}\n"
                    "  - {model: 'hf:./ft', fewshot: 1}\n", encoding="utf-8")
    loaded = load_rungs(path)
    assert [(r.name, r.fewshot, r.system_prompt, r.model) for r in loaded] == [
        ("zero-shot", 0, None, None), ("丁寧", 2, "丁寧に答えてください。", None), ("few-shot:1", 1, None, "hf:./ft")]

    for bad, words in [("few-shot:x", "few-shot takes a number"), ("zero-shot+few-shot:2", "twice"),
                       ("rag:0", "rag takes a number"), ("zero-shot,,few-shot:1", "empty rung"),
                       ("three-shot", "'three-shot' is not a rung"), ("few-shot:1,few-shot:1", "given twice")]:
        with pytest.raises(RungError, match=words):
            parse_rungs(bad)
    path.write_text("rungs:\n  - {fewshot: -1}\n", encoding="utf-8")
    with pytest.raises(RungError, match=r"rungs.yaml: rung 1: fewshot: Input should be greater than or equal to 0"):
        load_rungs(path)
    path.write_text("rungs:\n  - {shots: 2}\n", encoding="utf-8")
    with pytest.raises(RungError, match="rung 1: shots: Extra inputs are not permitted"):
        load_rungs(path)


def test_paired_difference_by_question_against_a_hand_count() -> None:
    a = {"q1": 1.0, "q2": 0.0, "q3": 0.0, "q4": 1.0, "only-a": 1.0}
    b = {"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 0.0, "only-b": 0.0}
    diff = paired_difference(a, b)
    assert diff is not None and diff.n_pairs == 4 and diff.diff == pytest.approx((0 + 1 + 1 - 1) / 4)
    assert diff.ci_low is not None and diff.ci_low <= diff.diff <= diff.ci_high
    assert not diff.significant  # one loss, two wins over four pairs
    same = paired_difference({str(i): float(i % 2) for i in range(40)}, {str(i): 1.0 for i in range(40)})
    assert same is not None and same.diff == pytest.approx(0.5) and same.significant


# -- the three situations, the frontier, costs by construction ----------------------------------
def test_recommendations_frontier_and_costs_known_by_construction(setup: Setup) -> None:
    models = setup.models("small", "large")
    result = hyouka.ladder(models, "jsquad", rungs=RUNGS, target=0.55, **setup.bench())

    shots = {"zero-shot": 0, "few-shot:1": 1, "few-shot:3": 3}
    assert len(result.cells) == 6
    for cell in result.cells:
        name = cell.model.removeprefix("openai:")
        k = shots[cell.rung]
        assert cell.score == pytest.approx(expected_score(SKILL[name], k))
        assert cell.cost_per_1k == pytest.approx(expected_cost_per_1k(*PRICES[name], k))
        assert cell.judge_cost_per_1k is None and cell.n_total == 20 and cell.model_calls == 20
        assert cell.ci_low <= cell.score <= cell.ci_high
    # the step up from the rung below, per model
    step = result.cell("large", "few-shot:3")
    assert step.below == "few-shot:1" and step.delta_score == pytest.approx(0.4)
    assert step.delta_cost == pytest.approx(expected_cost_per_1k(10, 20, 3) - expected_cost_per_1k(10, 20, 1))
    assert step.delta_paired is not None and step.delta_paired.diff == pytest.approx(0.4)
    assert result.cell("small", "zero-shot").below is None
    # latency: the large model's server holds each answer 200 ms
    large, small = result.cell("large", "zero-shot"), result.cell("small", "zero-shot")
    assert large.latency_p95 >= large.latency_p50 >= 0.2 and 0 < small.latency_p50 < large.latency_p50

    frontier = [c.label for c in result.frontier]
    assert frontier == ["openai:small + zero-shot", "openai:small + few-shot:1", "openai:small + few-shot:3",
                        "openai:large + few-shot:3"]

    # good enough (0.55): large few-shot:1's mean (0.6) is above the target but its interval is not
    rec = result.recommendation
    assert rec.situation == "good enough" and rec.cell is result.cell("small", "few-shot:3")
    assert not result.cell("large", "few-shot:1").meets_goal and result.cell("large", "few-shot:1").score > 0.55
    assert rec.alternative is result.cell("large", "few-shot:3")
    assert rec.reason.startswith("openai:small + few-shot:3 is the cheapest cell whose 95% interval reaches 0.55")
    assert "openai:large + few-shot:3 is 0.2 better at 10× the cost" in rec.reason
    assert rec.comparison is not None and rec.comparison.diff == pytest.approx(0.2)

    calls = setup.requests("small") + setup.requests("large")
    # fixed budget ($0.30 per 1,000 questions): the best score among small zero-shot and few-shot:1
    budget = hyouka.ladder(models, "jsquad", rungs=RUNGS, budget=0.30, **setup.bench())
    assert budget.recommendation.situation == "fixed budget"
    assert budget.recommendation.cell is budget.cell("small", "few-shot:1")
    assert "over the budget" in budget.recommendation.reason
    # step change: the best score whatever it costs
    step_change = hyouka.ladder(models, "jsquad", rungs=RUNGS, **setup.bench())
    assert step_change.recommendation.situation == "step change"
    assert step_change.recommendation.cell is step_change.cell("large", "few-shot:3")
    assert "every cheaper cell is significantly worse" in step_change.recommendation.reason
    # both: good enough within budget
    both = hyouka.ladder(models, "jsquad", rungs=RUNGS, target=0.55, budget=1.0, **setup.bench())
    assert both.recommendation.cell is both.cell("small", "few-shot:3")
    # the same cells each time: taken up from the store, no call made again, no second run stored
    assert setup.requests("small") + setup.requests("large") == calls
    assert [c.run_id for c in both.cells] == [c.run_id for c in result.cells]
    assert len(hyouka.Store(setup.store).list_runs()) == 6

    # no cell meets the goal: said plainly
    none = hyouka.ladder(models, "jsquad", rungs=RUNGS, target=1.01, **setup.bench())
    assert none.recommendation.cell is None
    assert none.recommendation.reason.startswith("No cell meets the goal: no cell's 95% interval reaches 1.01")
    poor = hyouka.ladder(models, "jsquad", rungs=RUNGS, budget=0.05, **setup.bench())
    assert poor.recommendation.cell is None and "every cell costs more than $0.05" in poor.recommendation.reason


def test_stop_at_goal_calls_nothing_above_the_first_rung_that_meets_it(setup: Setup) -> None:
    rungs = [*parse_rungs("zero-shot,few-shot:3,few-shot:5"),
             {"name": "fine-tuned", "model": "openai:ft", "model_options": {"base_url": setup.urls["ft"]}}]
    result = hyouka.ladder(setup.models("small", "large"), "jsquad", rungs=rungs, target=0.55, stop_at_goal=True,
                           **setup.bench())
    # both models meet the goal at few-shot:3: no five-shot prompt reaches either server, nor any to the fine-tune
    for name in ("small", "large"):
        assert setup.requests(name) == 40
        assert {shots for _, shots in setup.students[name].asked} == {0, 3}
    assert setup.requests("ft") == 0
    status = {c.label: c.status for c in result.cells}
    assert status["openai:small + few-shot:5"] == "not run: the goal was met at few-shot:3"
    assert status["openai:ft + fine-tuned"] == "not run: the goal was met by a model before this one"
    assert result.recommendation.cell is result.cell("small", "few-shot:3")

    # a goal the off-the-shelf models miss: the outer loop climbs on to the fine-tuned model
    result = hyouka.ladder(setup.models("small"), "jsquad", rungs=rungs[:2] + rungs[3:], target=0.9,
                           stop_at_goal=True, **setup.bench())
    assert setup.requests("ft") == 20 and result.cell("ft", "fine-tuned").meets_goal
    assert result.recommendation.cell is result.cell("ft", "fine-tuned")

    # a budget: a model stops climbing at the first rung dearer than it
    before = setup.requests("large")
    result = hyouka.ladder(setup.models("large"), "jsquad", rungs="zero-shot,few-shot:1,few-shot:3,few-shot:5",
                           budget=1.5, stop_at_goal=True, **setup.bench())
    assert setup.requests("large") - before == 20  # few-shot:1 was new; 5-shot never asked
    assert {shots for _, shots in setup.students["large"].asked} == {0, 1, 3}
    assert result.cell("large", "few-shot:3").status == "not run: few-shot:1 already costs more than the budget"

    with pytest.raises(LadderError, match="--stop-at-goal needs a goal"):
        hyouka.ladder(setup.models("large"), "jsquad", rungs=RUNGS, stop_at_goal=True, **setup.bench())


def test_an_interrupted_ladder_resumes_paying_no_call_twice(setup: Setup) -> None:
    models = setup.models("small", "large")

    def progress(label: str):
        def update(done: int, total: int) -> None:
            if label == "openai:large + few-shot:1" and done >= 10:
                raise KeyboardInterrupt

        return update

    with pytest.raises(KeyboardInterrupt):
        hyouka.ladder(models, "jsquad", rungs=RUNGS, target=0.55, progress=progress, **setup.bench())
    runs = hyouka.Store(setup.store).list_runs()
    assert [r["status"] for r in runs] == ["completed"] * 4 + ["interrupted"]
    first = setup.requests("small") + setup.requests("large")
    assert 90 <= first < 120

    result = hyouka.ladder(models, "jsquad", rungs=RUNGS, target=0.55, **setup.bench())
    for name in ("small", "large"):
        attempts = setup.stats[name].attempts
        assert len(attempts) == 60 and set(attempts.values()) == {1}  # every prompt reached the server once
    assert result.recommendation.cell is result.cell("small", "few-shot:3")
    assert result.cell("large", "few-shot:1").score == pytest.approx(expected_score(1, 1))
    assert len(hyouka.Store(setup.store).list_runs()) == 6  # the interrupted cell was resumed, not made again


def test_adding_a_rung_runs_only_the_new_cells(setup: Setup) -> None:
    models = setup.models("small", "large")
    first = hyouka.ladder(models, "jsquad", rungs="zero-shot,few-shot:1", **setup.bench(cache=False))
    assert setup.requests("small") == setup.requests("large") == 40
    more = hyouka.ladder(models, "jsquad", rungs=RUNGS, **setup.bench(cache=False))  # no cache: the store alone
    assert setup.requests("small") == setup.requests("large") == 60
    assert {shots for _, shots in setup.students["small"].asked[40:]} == {3}
    old = {c.label: c.run_id for c in first.cells}
    assert all(more.cell(*label.split(" + ")).run_id == run for label, run in old.items())
    assert [c.model_calls for c in more.cells] == [0, 0, 20, 0, 0, 20]


def test_a_judged_ladder_on_ones_own_data_with_few_shot_rows(setup: Setup) -> None:
    kwargs = setup.kwargs(metric="answer_correctness", judge="openai:judge",
                          judge_options={"base_url": setup.urls["judge"]})
    models = setup.models("small", "large")
    plan = hyouka.ladder(models, str(setup.qa), rungs=RUNGS, dry_run=True, **kwargs)
    assert setup.requests("small") == setup.requests("large") == setup.requests("judge") == 0
    assert [c.estimate["n_calls"] for c in plan.cells] == [20] * 6
    assert all(c.estimate["judge_calls"] == 20 and c.estimate["judge_cost_usd"] > 0 for c in plan.cells)
    assert plan.cell("large", "zero-shot").estimate["cost_usd"] > plan.cell("small", "zero-shot").estimate["cost_usd"]

    result = hyouka.ladder(models, str(setup.qa), rungs=RUNGS, target=4.0, **kwargs)
    shots = {"zero-shot": 0, "few-shot:1": 1, "few-shot:3": 3}
    for cell in result.cells:
        name = cell.model.removeprefix("openai:")
        right = expected_score(SKILL[name], shots[cell.rung])
        assert cell.score == pytest.approx(5 * right + 1 * (1 - right))  # the judge gives 5 or 1
        assert cell.cost_per_1k == pytest.approx(expected_cost_per_1k(*PRICES[name], shots[cell.rung]))
        assert cell.judge_cost_per_1k is not None and cell.judge_cost_per_1k > 0  # apart from the model's
    # a few-shot row is asked after other rows' answers, never its own
    asked = setup.students["small"].asked
    assert {shots for _, shots in asked} == {0, 1, 3}
    assert result.recommendation.cell is result.cell("large", "few-shot:3")  # 4.2 [3.4, 4.8] does not reach 4.0
    again = hyouka.ladder(models, str(setup.qa), rungs=RUNGS, dry_run=True, **kwargs)
    assert all(c.estimate["n_calls"] == 0 and c.estimate["judge_calls"] == 0 for c in again.cells)
    rerun = hyouka.ladder(models, str(setup.qa), rungs=RUNGS, target=4.0, **kwargs)  # cells taken up, not remade
    assert [c.run_id for c in rerun.cells] == [c.run_id for c in result.cells] and rerun.model_calls == 0
    assert len(hyouka.Store(setup.store).list_runs()) == 6


def test_bad_ladders_are_refused_before_any_call(setup: Setup) -> None:
    models = setup.models("small")
    with pytest.raises(LadderError, match=r"rung rag:4: retrieval .* needs one's own data and an index; jsquad is a "
                                          r"benchmark task"):
        hyouka.ladder(models, "jsquad", rungs="zero-shot,rag:4", **setup.bench())
    with pytest.raises(LadderError, match="a ladder climbs one task, got 2"):
        hyouka.ladder(models, "jsquad,jnli", rungs=RUNGS, **setup.bench())
    with pytest.raises(LadderError, match="jglue is a suite"):
        hyouka.ladder(models, "jglue", rungs=RUNGS, **setup.bench())
    with pytest.raises(LadderError, match="answer_correctness is graded by a judge: give --judge"):
        hyouka.ladder(models, str(setup.qa), rungs=RUNGS, metric="answer_correctness", **setup.kwargs())
    with pytest.raises(LadderError, match="give the metric"):
        hyouka.ladder(models, str(setup.qa), rungs=RUNGS, **setup.kwargs())
    with pytest.raises(LadderError, match="rung rag:4 retrieves 4 chunks: give the index"):
        hyouka.ladder(models, f"rag:{setup.qa}", rungs="zero-shot,rag:4", metric="char_f1", **setup.kwargs())
    with pytest.raises(ValueError, match="the budget is a cost per 1,000 questions"):
        Goal(budget=-1)
    assert setup.requests("small") == 0


def test_retrieval_rungs_climb_on_a_rag_index(setup: Setup) -> None:
    pytest.importorskip("bm25s")
    from hyouka.rag import Index

    index = Index.build(rag_documents(), "answers", root=setup.tmp / "indexes", cache=False)
    models = setup.models("small")
    rungs = "zero-shot,few-shot:1,rag:2,few-shot:1+rag:2"
    plan = hyouka.ladder(models, f"rag:{setup.qa}", rungs=rungs, metric="exact_match", index=index, dry_run=True,
                         **setup.kwargs())
    assert all(c.estimate is not None for c in plan.cells)  # retrieval rungs too: BM25 is searched in a dry run
    n = plan.cells[0].estimate["n_questions"]
    for rung in ("rag:2", "few-shot:1+rag:2"):
        estimate = plan.cell("small", rung).estimate
        assert estimate["n_calls"] == n and estimate["retrieval"].startswith(f"retrieval: {n} searched (prompts exact")
        assert estimate["prompt_tokens"] > plan.cell("small", rung.replace("rag:2", "").strip("+") or "zero-shot"
                                                     ).estimate["prompt_tokens"]  # the chunks are in the prompts
    assert any("searched (prompts exact" in note for note in plan.notes)
    assert setup.requests("small") == 0

    result = hyouka.ladder(models, f"rag:{setup.qa}", rungs=rungs, metric="exact_match", index=index, target=0.9,
                           **setup.kwargs())
    parts = {"zero-shot": (0, 0), "few-shot:1": (1, 0), "rag:2": (0, 2), "few-shot:1+rag:2": (1, 2)}
    for cell in result.cells:
        shots, chunks = parts[cell.rung]
        # the retrieved chunk holding the answer makes every question right, whatever its difficulty
        assert cell.score == pytest.approx(1.0 if chunks else expected_score(0, shots))
        assert cell.cost_per_1k == pytest.approx(expected_cost_per_1k(*PRICES["small"], shots, chunks))
        planned = plan.cell("small", cell.rung).estimate  # an upper estimate: completions counted at max_tokens
        assert planned["cost_usd"] / planned["n_questions"] * 1000 >= cell.cost_per_1k
    samples = hyouka.Store(setup.store).samples(result.cell("small", "rag:2").run_id)
    assert all(len(s["details"]["retrieval"]["chunk_ids"]) == 2 for s in samples)
    assert result.recommendation.cell is result.cell("small", "rag:2")
    assert "few-shot:1+rag:2" not in result.recommendation.reason  # as good, dearer: no better cell to name
    assert result.recommendation.reason.endswith("no cell scores higher.")


def test_the_ladder_command(setup: Setup) -> None:
    from hyouka.cli import app

    rungs = setup.tmp / "rungs.yaml"
    ft = f"{{name: fine-tuned, model: 'openai:ft', model_options: {{base_url: '{setup.urls['ft']}'}}}}"
    rungs.write_text(f"rungs:\n  - zero-shot\n  - {{name: 例題3つ, fewshot: 3}}\n  - {ft}\n", encoding="utf-8")
    common = ["ladder", "--model", "openai:small", "--base-url", setup.urls["small"], "--tasks", "jsquad",
              "--data-file", f"jsquad={setup.jsquad}", "--metric", "char_f1", "--rungs", str(rungs),
              "--store", setup.store, "--prices", str(setup.prices)]
    runner = CliRunner()
    dry = runner.invoke(app, [*common, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run: ladder on jsquad" in dry.output and "upper estimate for the whole ladder: 60 model calls" in (
        dry.output)
    assert setup.requests("small") == setup.requests("ft") == 0

    report = setup.tmp / "ladder.html"
    out = runner.invoke(app, [*common, "--target", "0.7", "--report", str(report)])
    assert out.exit_code == 0, out.output
    # small + 例題3つ scores 0.8 [0.6, 0.95]: its interval misses 0.7; the fine-tuned model (1.0) is cheaper anyway
    assert ("recommendation (good enough): openai:ft + fine-tuned is the cheapest cell whose 95% interval reaches 0.7"
            in out.output)
    assert "openai:small  例題3つ" in out.output  # the table, Japanese rung names aligned
    assert "例題3つ" in report.read_text(encoding="utf-8") and 'id="chart-ladder_cost"' in report.read_text("utf-8")
    assert setup.requests("ft") == 20

    as_json = runner.invoke(app, [*common, "--budget", "0.2", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["recommendation"]["cell"] == "openai:small + zero-shot" and doc["situation"] == "fixed budget"
    assert [c["model_calls"] for c in doc["cells"]] == [0, 0, 0]  # all three cells taken up from the store

    bad = runner.invoke(app, [*common, "--rungs", "zero-shot,few-shot:x"])
    assert bad.exit_code == 2 and "few-shot takes a number of solved examples" in bad.output


def test_a_ladder_is_stored_and_read_back_as_it_ran_and_served(setup: Setup) -> None:
    """Stored with its cells' runs and its prices: read back (and on the dashboard, its JSON twin and page)
    it measures and recommends as it did, without the price file it ran with."""
    from hyouka.evaluation.ladder import list_ladders, load_ladder

    models = setup.models("small", "large")
    result = hyouka.ladder(models, "jsquad", rungs=RUNGS, target=0.55, **setup.bench())
    assert result.ladder_id is not None
    back = load_ladder(result.ladder_id, store=setup.store)  # the default price table: no price for these models
    made_now = ("model_calls", "cache_hits", "reused")
    assert [{k: v for k, v in c.to_dict().items() if k not in made_now} for c in back.cells] == [
        {k: v for k, v in c.to_dict().items() if k not in made_now} for c in result.cells]
    assert back.recommendation.to_dict() == result.recommendation.to_dict()
    assert back.cell("small", "few-shot:3").cost_per_1k == pytest.approx(expected_cost_per_1k(*PRICES["small"], 3))
    again = hyouka.ladder(models, "jsquad", rungs=RUNGS, target=0.55, **setup.bench())
    budget = hyouka.ladder(models, "jsquad", rungs=RUNGS, budget=0.30, **setup.bench())
    assert again.ladder_id == result.ladder_id and budget.ladder_id != result.ladder_id
    listed = list_ladders(setup.store)
    assert [row["ladder_id"] for row in listed] == [budget.ladder_id, result.ladder_id]
    assert listed[1]["models"] == ["openai:small", "openai:large"] and listed[1]["n_run"] == 6

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hyouka.web.app import create_app

    store = hyouka.Store(setup.store)
    client = TestClient(create_app(store))
    assert [row["ladder_id"] for row in client.get("/api/ladders").json()["ladders"]] == [budget.ladder_id,
                                                                                        result.ladder_id]
    shown = client.get(f"/api/ladders/{result.ladder_id}").json()
    assert shown["recommendation"] == json.loads(json.dumps(result.recommendation.to_dict()))
    assert [c["run_id"] for c in shown["cells"]] == [c.run_id for c in result.cells]
    html = client.get(f"/ladders/{result.ladder_id[:6]}").text
    assert "openai:small + few-shot:3 is the cheapest cell whose 95% interval reaches 0.55" in html
    assert html.count('class="chosen"') == 1 and result.ladder_id in client.get("/ladders").text
    if shown["charts"]:  # the report extra draws them
        assert [c["key"] for c in shown["charts"]] == ["ladder_cost", "ladder_latency"]
        png = client.get(shown["charts"][0]["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert client.get("/api/ladders/nope").status_code == 404
    store.delete_run(result.cells[0].run_id)  # a cell's run gone: said, and left out of the choice
    gone = load_ladder(result.ladder_id, store=setup.store)
    assert gone.cells[0].status.startswith("not measured: no run") and gone.recommendation.cell is not None


@pytest.mark.slow
def test_a_ladder_is_stored_and_served_on_postgres(setup: Setup) -> None:
    """The ladders table on a real PostgreSQL server: recorded, listed, read back with the same recommendation."""
    from tests import postgres

    reason = postgres.missing()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hyouka.evaluation.ladder import load_ladder
    from hyouka.web.app import create_app

    with postgres.postgres_server() as url:
        result = hyouka.ladder(setup.models("small", "large"), "jsquad", rungs=RUNGS, target=0.55,
                               **setup.bench(store=url))
        again = hyouka.ladder(setup.models("small", "large"), "jsquad", rungs=RUNGS, target=0.55,
                              **setup.bench(store=url))
        assert again.ladder_id == result.ladder_id
        back = load_ladder(result.ladder_id[:5], store=url)
        assert back.recommendation.to_dict() == result.recommendation.to_dict()
        store = hyouka.Store(url)
        client = TestClient(create_app(store))
        assert [row["ladder_id"] for row in client.get("/api/ladders").json()["ladders"]] == [result.ladder_id]
        shown = client.get(f"/api/ladders/{result.ladder_id}").json()
        assert shown["recommendation"] == json.loads(json.dumps(result.recommendation.to_dict()))
        store.close()
