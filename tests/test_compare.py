"""Compare two runs: paired by document, differences with bootstrap intervals, the examples that changed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.metrics.bootstrap import bootstrap
from hyouka.metrics.correlation import pearson
from hyouka.report.compare import compare_runs
from hyouka.store.store import Store


def _run(store: Store, model: str, task: str, samples: list[dict[str, Any]], aggregates: dict[str, float]) -> str:
    run_id = store.create_run(model=model, task=task, mode="generate", config={}, config_hash=model,
                              n_samples=len(samples))
    store.write_samples(run_id, samples)
    store.set_aggregates(run_id, [{"metric": k, "value": v, "n_scored": len(samples), "n_total": len(samples)}
                                  for k, v in aggregates.items()])
    store.finish_run(run_id)
    return run_id


def _sample(i: int, doc_id: str, prediction: Any, reference: Any, metrics: dict[str, float],
            output: str | None = None) -> dict[str, Any]:
    return {"sample_index": i, "doc_id": doc_id, "doc": {}, "prompt": f"問題 {doc_id}", "requests": [],
            "responses": [], "output": output, "extracted": None, "prediction": prediction, "reference": reference,
            "metrics": metrics, "details": {}, "status": "ok", "error": None}


@pytest.fixture()
def two_runs(store: Store) -> tuple[str, str, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    gold = rng.integers(0, 3, 60)
    a_right = rng.random(60) < 0.5
    b_right = a_right.copy()
    b_right[np.flatnonzero(~a_right)[:12]] = True  # B fixes 12 answers...
    b_right[np.flatnonzero(a_right)[:2]] = False  # ...and breaks 2
    def preds(right: np.ndarray) -> list[int]:
        return [int(g) if r else int((g + 1) % 3) for g, r in zip(gold, right, strict=True)]
    pa, pb = preds(a_right), preds(b_right)
    samples_a = [_sample(i, f"d{i}", pa[i], int(gold[i]), {"acc": float(a_right[i])}, f"A{i}") for i in range(60)]
    # B stored in another order and missing one document: pairing is by document id
    samples_b = [_sample(j, f"d{i}", pb[i], int(gold[i]), {"acc": float(b_right[i])}, f"B{i} <b>")
                 for j, i in enumerate(reversed(range(1, 60)))]
    a = _run(store, "model-a", "jnli", samples_a, {"acc": float(a_right.mean()), "macro_f1": 0.0})
    b = _run(store, "model-b", "jnli", samples_b, {"acc": float(b_right[1:].mean()), "macro_f1": 0.0})
    return a, b, a_right.astype(float), b_right.astype(float)


def test_paired_difference_and_interval(store: Store, two_runs: tuple[str, str, np.ndarray, np.ndarray]) -> None:
    a, b, a_acc, b_acc = two_runs
    result = compare_runs(store, a, b, n_resamples=500, seed=3)
    assert result.paired_by == "doc_id" and result.n_pairs == 59 and (result.only_a, result.only_b) == (1, 0)
    acc = next(m for m in result.metrics if m.metric == "acc")
    d = b_acc[1:] - a_acc[1:]
    assert acc.diff == pytest.approx(d.mean()) and acc.n_pairs == 59
    assert (acc.n_better, acc.n_worse, acc.n_same) == (int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()))
    expected = bootstrap(lambda x: x.mean(axis=-1), d, n_resamples=500, seed=3, vectorized=True)
    assert (acc.ci_low, acc.ci_high) == pytest.approx((expected.ci_low, expected.ci_high))
    assert acc.ci_low < acc.diff < acc.ci_high and acc.significant

    # a corpus metric is recomputed on the pairs, with a paired interval
    f1 = next(m for m in result.metrics if m.metric == "macro_f1")
    assert f1.kind == "corpus" and f1.diff is not None and f1.diff > 0 and f1.ci_low is not None

    assert result.n_changed == int((d != 0).sum()) == len(result.changed) >= 12
    assert {c.delta for c in result.changed} == {1.0, -1.0}
    assert all(c.prediction_a != c.prediction_b for c in result.changed)


def test_identical_runs_show_no_change(store: Store) -> None:
    samples = [_sample(i, f"d{i}", i % 2, i % 2, {"acc": 1.0}) for i in range(20)]
    a = _run(store, "a", "jnli", samples, {"acc": 1.0})
    b = _run(store, "b", "jnli", samples, {"acc": 1.0})
    result = compare_runs(store, a, b, metrics=["acc"])
    (acc,) = result.metrics
    assert acc.diff == 0.0 and not acc.significant and result.n_changed == 0


def test_correlation_metric_difference(store: Store) -> None:
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 80)
    noisy_a = gold + rng.normal(0, 2.0, 80)
    noisy_b = gold + rng.normal(0, 0.5, 80)
    a = _run(store, "a", "jsts", [_sample(i, f"s{i}", float(noisy_a[i]), float(gold[i]), {}) for i in range(80)],
             {"pearson": pearson(noisy_a, gold)})
    b = _run(store, "b", "jsts", [_sample(i, f"s{i}", float(noisy_b[i]), float(gold[i]), {}) for i in range(80)],
             {"pearson": pearson(noisy_b, gold)})
    (r,) = compare_runs(store, a, b, n_resamples=200).metrics
    assert r.metric == "pearson" and r.kind == "corpus"
    assert r.diff == pytest.approx(pearson(noisy_b, gold) - pearson(noisy_a, gold))
    assert 0 < r.ci_low < r.diff < r.ci_high


def test_runs_on_different_tasks_are_refused(store: Store) -> None:
    a = _run(store, "a", "jnli", [_sample(0, "x", 1, 1, {"acc": 1.0})], {"acc": 1.0})
    b = _run(store, "b", "jsts", [_sample(0, "x", 1.0, 1.0, {})], {"pearson": 1.0})
    with pytest.raises(ValueError, match="different tasks"):
        compare_runs(store, a, b)


def test_compare_command(store: Store, two_runs: tuple[str, str, np.ndarray, np.ndarray]) -> None:
    a, b, _, _ = two_runs
    runner = CliRunner()
    table = runner.invoke(app, ["compare", a, b, "--store", store.url, "--show", "3", "--resamples", "200"])
    assert table.exit_code == 0, table.output
    assert "acc" in table.output and "examples changed" in table.output and "showing 3" in table.output
    assert "<b>" in table.output  # model text printed literally (rich markup escaped)
    data = json.loads(runner.invoke(app, ["compare", a, b, "--store", store.url, "--format", "json"]).stdout)
    assert data["n_pairs"] == 59 and data["metrics"][0]["metric"] == "acc" and data["metrics"][0]["significant"]


def test_compare_shows_each_changed_question_and_counts_that_agree(tmp_path: Any, jglue_dir: Any) -> None:
    """Real runs: A always answers the first choice, B the second. Every answer changes; B is better where
    the gold is the second choice, worse where it is the first, and the same (both wrong) elsewhere."""
    import hyouka
    from hyouka.tasks.registry import load_task
    from hyouka.tasks.task import Task
    from tests.fakes import ScriptedModel

    def pick(index: int):
        def answer(prompt: str) -> str:
            line = next(x for x in reversed(prompt.splitlines()) if x.startswith("選択肢："))
            return line.removeprefix("選択肢：").split("、")[index]
        return answer

    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    ids = []
    for name, index in (("first", 0), ("second", 1)):
        model = ScriptedModel(answer=pick(index))
        model.name = name
        ids.append(hyouka.run(model, "jcommonsenseqa", mode="generate", limit=20, data_dir=jglue_dir, store=url,
                              cache=False)["jcommonsenseqa"].run_id)
    docs = Task(load_task("jcommonsenseqa"), data_dir=jglue_dir).docs()[:20]
    golds = [int(d["label"]) for d in docs]
    better, worse = golds.count(1), golds.count(0)
    same = 20 - better - worse

    result = CliRunner().invoke(app, ["compare", *ids, "--store", url, "--show", "5", "--resamples", "50"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"20 examples changed (answer, score or status): {better} better, {worse} worse, {same} the same on acc" \
           in out and "showing 5 (--show N for more)" in out
    shown = [line for line in out.splitlines() if line.startswith("#")]
    assert len(shown) == 5
    for line in shown:  # each changed example with its own question, not the instruction or few-shot text
        doc = next(d for d in docs if line.startswith(f"#{d['q_id']} "))
        question_line = out.splitlines()[out.splitlines().index(line) + 1]
        assert question_line.startswith("   Q: 質問：" + doc["question"])

    full = json.loads(CliRunner().invoke(app, ["compare", *ids, "--store", url, "--show", "100", "--format", "json",
                                               "--resamples", "50"]).stdout)
    assert full["n_changed"] == len(full["changed"]) == 20
    assert (full["n_changed_better"], full["n_changed_worse"], full["n_changed_same"]) == (better, worse, same)
    acc = next(m for m in full["metrics"] if m["metric"] == "acc")  # the table's + / − / = columns
    assert (acc["n_better"], acc["n_worse"], acc["n_same"]) == (better, worse, same)
