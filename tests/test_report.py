"""Leaderboard (suites as data, weights, lower-is-better, intervals), its formats, Pareto frontier, charts, report."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.metrics.pareto import pareto_frontier
from hyouka.report.leaderboard import build_leaderboard, load_suite
from hyouka.report.summary import board_stats
from hyouka.report.tables import render, to_csv, to_markdown
from hyouka.report.views import load_views
from hyouka.store.store import Store
from hyouka.tasks.registry import SuiteEntry, SuiteSpec
from tests.test_accounting import UsageModel

SCRIPT = "<script>window.__pwned = 1</script>"
JUDGE = "openai:gpt-4o-mini"


# -- Pareto frontier --------------------------------------------------------------------------
def test_pareto_frontier_on_hand_made_points() -> None:
    #          cost  quality
    points = [(1.0, 0.50),   # 0 cheapest: on the frontier
              (2.0, 0.70),   # 1 on
              (2.5, 0.65),   # 2 dominated by 1
              (3.0, 0.70),   # 3 same quality as 1, dearer: dominated
              (4.0, 0.90),   # 4 on (best quality)
              (0.5, 0.20),   # 5 on (cheapest of all)
              (5.0, 0.90),   # 6 dominated by 4
              (4.0, 0.90)]   # 7 identical to 4: both stay
    xs, ys = zip(*points, strict=True)
    assert pareto_frontier(xs, ys) == [5, 0, 1, 4, 7]
    # Missing values are ignored; a different orientation (both maximised) changes the answer.
    assert pareto_frontier([1.0, None, 2.0, float("nan")], [0.5, 0.9, 0.4, 1.0]) == [0]
    assert pareto_frontier([1.0, 2.0, 3.0], [0.1, 0.2, 0.3], minimize_x=False) == [2]
    assert pareto_frontier([], []) == []


# -- a store with two models, a judge run and an unfinished run -------------------------------
def _judge_run(store: Store, subject: str) -> str:
    run_id = store.create_run(
        kind="judge", model=JUDGE, task="mt_bench_ja", task_version="1", task_hash="abc", mode="judge",
        config={"subject_model": subject, "rubric": "mt_bench", "api_key": "sk-secret-value", "seed": 0},
        config_hash="judgehash", model_identity={"backend": "openai", "model": "gpt-4o-mini"},
        versions={"python": "3.11"}, n_samples=4,
    )
    samples = []
    for i, (category, score) in enumerate([("writing", 8.0), ("writing", 6.0), ("math", 3.0), ("coding", 5.0)]):
        samples.append({
            "sample_index": i, "doc_id": f"q{i}", "doc": {"category": category, "question": "質問"},
            "prompt": f"judge prompt {i}", "requests": [], "output": f"[[{score:.0f}]]",
            "responses": [{"text": "ok", "prompt_tokens": 1000, "completion_tokens": 100, "latency_s": 1.0,
                           "error": None, "cached": False}],
            "extracted": str(score), "prediction": score, "reference": None, "metrics": {"score": score},
            "details": {"justification": f"理由 {i} {SCRIPT}"}, "status": "ok", "error": None,
            "latency_s": 1.0, "prompt_tokens": 1000, "completion_tokens": 100, "cost_usd": None,
        })
    store.write_samples(run_id, samples)
    store.set_aggregates(run_id, [{"metric": "score", "value": 5.5, "stderr": 1.0, "ci_low": 3.5, "ci_high": 7.5,
                                   "n_scored": 4, "n_total": 4}])
    store.finish_run(run_id)
    return run_id


@pytest.fixture()
def filled(tmp_path: Path, jglue_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  usage-model: {input: 3.0, output: 15.0}\n  cheap-model: {input: 0.1, output: 0.2}\n",
                      encoding="utf-8")
    monkeypatch.setenv("HYOUKA_PRICES", str(prices))
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    store = Store(url)
    good = UsageModel(answer="中立")
    cheap = UsageModel(name="cheap-model", answer=f"含意 {SCRIPT}")
    runs = {}
    for model in (good, cheap):
        result = hyouka.run(model, "jnli", mode="generate", limit=12, data_dir=jglue_dir, store=store, cache=False)
        runs[model.name] = result["jnli"].run_id
    runs["judge"] = _judge_run(store, "UsageModel:usage-model")
    broken = UsageModel(name="broken")
    with pytest.raises(KeyboardInterrupt):
        hyouka.run(broken, "jnli", mode="generate", limit=3, data_dir=jglue_dir, store=store, cache=False,
                   progress=lambda _: _interrupt)
    runs["broken"] = next(r["id"] for r in store.list_runs() if r["status"] == "interrupted")
    return {"store": store, "url": url, "runs": runs, "tmp": tmp_path}


def _interrupt(done: int, total: int) -> None:
    if done >= 1:
        raise KeyboardInterrupt


def test_leaderboard_weights_lower_is_better_and_interval(filled: dict[str, Any]) -> None:
    store = filled["store"]
    suite = SuiteSpec(suite="custom", version="1", tasks=[
        SuiteEntry(task="jnli", metric="acc", weight=3.0),
        SuiteEntry(task="mt_bench_ja", metric="score", weight=1.0),
    ])
    board = build_leaderboard(store, suite=suite, kinds=("benchmark", "judge"))
    assert board.tasks == ["jnli", "mt_bench_ja"] and board.weights == {"jnli": 3.0, "mt_bench_ja": 1.0}
    top = board.rows[0]
    assert top.model == "UsageModel:usage-model" and set(top.cells) == {"jnli", "mt_bench_ja"}
    acc = top.cells["jnli"]
    assert top.average == pytest.approx((3 * acc.value + 5.5) / 4)
    se = math.sqrt((3 / 4) ** 2 * acc.stderr**2 + (1 / 4) ** 2 * 1.0**2)
    assert top.average_ci_low == pytest.approx(top.average - 1.959963984540054 * se)
    assert top.average_ci_high == pytest.approx(top.average + 1.959963984540054 * se)

    # lower is better: a rate in [0, 1] enters the average as 1 - value
    lower = SuiteSpec(suite="errors", version="1", tasks=[SuiteEntry(task="jnli", metric="format_error_rate",
                                                                        lower_is_better=True)])
    board = build_leaderboard(store, suite=lower)
    for row in board.rows:
        assert row.cells["jnli"].lower_is_better
        assert row.average == pytest.approx(1 - row.cells["jnli"].value)

    # without a suite, unrelated tasks and the judge's 1-10 scores are shown side by side, never averaged
    plain = build_leaderboard(store, suite=None, kinds=("benchmark", "judge"))
    row = next(r for r in plain.rows if r.model == "UsageModel:usage-model")
    assert set(row.cells) == {"jnli", "mt_bench_ja"}
    assert not plain.has_average and all(r.average is None for r in plain.rows)


def test_suite_files_load_as_data(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("suite: mine\nversion: '1'\ntasks:\n  - {task: jnli, metric: acc, weight: 2}\n"
                    "  - {task: jsts, metric: pearson}\n", encoding="utf-8")
    suite = load_suite(str(path))
    assert suite is not None and [e.weight for e in suite.tasks] == [2.0, 1.0]
    assert load_suite("jglue").suite == "jglue" and load_suite(None) is None
    with pytest.raises(ValueError, match="unknown suite"):
        load_suite("nope")


def test_row_costs_keep_the_judge_apart(filled: dict[str, Any]) -> None:
    store = filled["store"]
    board = build_leaderboard(store, suite=None, kinds=("benchmark", "judge"))
    views = load_views(store, [filled["runs"]["usage-model"], filled["runs"]["cheap-model"], filled["runs"]["judge"]])
    stats = dict(zip([r.model for r in board.rows], board_stats(board, views), strict=True))
    own = sum(s["cost_usd"] for s in store.samples(filled["runs"]["usage-model"]))
    good = stats["UsageModel:usage-model"]
    assert good.cost_usd == pytest.approx(own)
    assert good.judge_cost_usd == pytest.approx(4 * (1000 * 0.15 + 100 * 0.60) / 1e6)  # default gpt-4o-mini price
    assert stats["UsageModel:cheap-model"].judge_cost_usd is None
    assert good.latency_p50 is not None and good.n_calls == 12


def test_leaderboard_formats_escape_user_text(filled: dict[str, Any]) -> None:
    store = filled["store"]
    store.update_run(filled["runs"]["cheap-model"], model="=HYPERLINK(x)|evil")
    board = build_leaderboard(store, suite=None)
    views = load_views(store, [r for row in board.rows for r in row.run_ids])
    stats = board_stats(board, views)
    md = to_markdown(board, stats)
    assert "=HYPERLINK(x)\\|evil" in md and md.count("\n") == len(board.rows) + 2
    rows = list(csv.DictReader(io.StringIO(to_csv(board, stats))))
    assert {r["model"] for r in rows} == {"UsageModel:usage-model", "'=HYPERLINK(x)|evil"}
    assert all(float(r["jnli"]) >= 0 for r in rows) and "average" not in rows[0]  # no suite: no average
    data = json.loads(render(board, "json", stats))
    assert data["tasks"] == ["jnli"] and data["rows"][0]["cost_usd"] > 0
    html = render(board, "html", stats)
    assert "<table" in html and "=HYPERLINK(x)|evil" in html
    with pytest.raises(ValueError, match="unknown leaderboard format"):
        render(board, "xlsx")


def test_charts_render_as_png_and_svg(filled: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    from hyouka.report.build import build_report

    report = build_report(filled["store"])
    keys = [c.key for c in report.charts]
    assert keys == ["metrics", "latency", "quality_cost", "quality_latency", "categories"]
    assert report.categories["UsageModel:usage-model"] == {"writing": 7.0, "math": 3.0, "coding": 5.0}
    png = report.charts[0].to_bytes("png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = report.charts[2].to_bytes("svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert any("interrupted" in note for note in report.notes)


def test_html_report_is_self_contained_and_escapes_model_text(filled: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    out = filled["tmp"] / "report.html"
    result = CliRunner().invoke(app, ["report", "--store", filled["url"], "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert SCRIPT not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert html.count('<img src="data:image/png;base64,') == 5
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    assert "sk-secret-value" not in html and "[redacted]" in html
    assert "理由 0" in html  # the judge's justification
    for run_id in filled["runs"].values():
        assert run_id in html
    assert "abc" in html and "judgehash" in html  # task and config hashes


@pytest.mark.parametrize("suffix", [".md", ".csv", ".json"])
def test_report_writes_leaderboard_formats(filled: dict[str, Any], suffix: str) -> None:
    out = filled["tmp"] / f"board{suffix}"
    ids = [filled["runs"]["usage-model"], filled["runs"]["cheap-model"]]
    result = CliRunner().invoke(app, ["report", *ids, "--store", filled["url"], "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "UsageModel:cheap-model" in text and "jnli" in text
    if suffix == ".json":
        (table,) = json.loads(text)["tables"]
        assert [r["model"] for r in table["rows"]] == ["UsageModel:cheap-model", "UsageModel:usage-model"]
        assert table["suite"] == "jglue" and all(r["partial"] for r in table["rows"])


def test_leaderboard_command_prints_markdown_with_costs(filled: dict[str, Any]) -> None:
    args = ["leaderboard", "--suite", "none", "--store", filled["url"], "--format", "markdown"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### all tasks") and "| \\#" in result.stdout
    assert "$" in result.stdout and "latency p50" in result.stdout


def test_judge_run_answers_count_for_the_model_and_judge_calls_apart(tmp_path: Path) -> None:
    """A judge run as hyouka.evaluation records it: the judge's calls in ``responses``, the answer in details."""
    from hyouka.report.examples import example_row

    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    run_id = store.create_run(kind="judge", model=JUDGE, task="eval:qa.csv", mode="qa", config_hash="x",
                              config={"subject_model": "openai:gpt-4o", "model_identity": {"model": "gpt-4o"}},
                              n_samples=1)
    judge_call = {"text": "{}", "prompt_tokens": 2000, "completion_tokens": 200, "latency_s": 2.0, "error": None}
    answer = {"text": "東京です。", "prompt_tokens": 100, "completion_tokens": 10, "latency_s": 0.5, "error": None}
    store.write_samples(run_id, [{
        "sample_index": 0, "doc_id": "r0", "doc": {"inputs": "首都は?"}, "prompt": "首都は?", "requests": [],
        "responses": [judge_call, judge_call], "output": "東京です。", "prediction": "東京です。", "reference": "東京",
        "metrics": {"correctness": 5.0, "relevance": 4.0}, "status": "ok",
        "details": {"answer": answer, "judge": {"correctness": {"score": 5, "justification": "正しい"},
                                                 "relevance": {"score": 4, "justification": "<b>関連</b>"}}},
    }])
    store.set_aggregates(run_id, [{"metric": "correctness", "value": 5.0, "n_scored": 1, "n_total": 1}])
    store.finish_run(run_id)

    (view,) = load_views(store, [run_id])
    row = example_row(view, view.samples[0])
    assert row["model"] == "openai:gpt-4o" and row["judge"] == JUDGE
    assert row["justification"] == "correctness: 正しい\nrelevance: <b>関連</b>"
    board = build_leaderboard(store, suite=None, kinds=("judge",))
    (stats,) = board_stats(board, [view])
    assert board.rows[0].model == "openai:gpt-4o" and board.rows[0].cells["eval:qa.csv"].metric == "correctness"
    assert stats.cost_usd == pytest.approx((100 * 2.50 + 10 * 10.00) / 1e6)  # gpt-4o answering
    assert stats.judge_cost_usd == pytest.approx(2 * (2000 * 0.15 + 200 * 0.60) / 1e6)  # gpt-4o-mini judging
    assert stats.latency_p50 == 0.5
