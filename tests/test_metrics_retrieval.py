"""Retrieval metrics against MLflow's own implementation and hand-computed cases; names in the registry."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from hyouka.metrics import retrieval
from hyouka.metrics.registry import aggregate, metric_info, sample_score


def _cases(n: int = 300, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(12)]
    out = []
    for _ in range(n):
        retrieved = [rng.choice(docs) for _ in range(rng.randint(0, 8))]  # duplicates: chunks of one document
        relevant = rng.sample(docs, rng.randint(0, 4))
        out.append((retrieved, relevant))
    return [*out, ([], []), (["d1"], []), ([], ["d1"]), (["d1", "d1", "d1", "d3"], ["d1", "d2"])]


@pytest.mark.parametrize("kind", ["precision", "recall", "ndcg"])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_equal_to_mlflow_retriever_metrics(kind: str, k: int) -> None:
    mlflow_metrics = pytest.importorskip("mlflow.metrics")
    pytest.importorskip("sklearn")
    cases = _cases()
    maker = {"precision": mlflow_metrics.precision_at_k, "recall": mlflow_metrics.recall_at_k,
             "ndcg": mlflow_metrics.ndcg_at_k}[kind]
    metric = maker(k)
    assert metric.name == f"{kind}_at_{k}"  # MLflow's name is hyouka's canonical one
    expected = metric.eval_fn(pd.Series([r for r, _ in cases]), pd.Series([g for _, g in cases])).scores
    ours = [sample_score(f"{kind}_at_{k}", r, g) for r, g in cases]
    assert ours == pytest.approx(expected, abs=1e-6)


def test_hand_computed_cases() -> None:
    retrieved, relevant = ["a", "b", "c", "d"], ["c", "x"]
    assert retrieval.hit_at_k(retrieved, relevant, 2) == 0.0
    assert retrieval.hit_at_k(retrieved, relevant, 3) == 1.0
    assert retrieval.recall_at_k(retrieved, relevant, 4) == 0.5
    assert retrieval.precision_at_k(retrieved, relevant, 4) == 0.25
    assert retrieval.mrr(retrieved, relevant) == pytest.approx(1 / 3)
    assert retrieval.mrr(retrieved, relevant, 2) == 0.0
    # one relevant at rank 3 of 4; two relevant ids, so the ideal has them at ranks 1 and 2
    assert retrieval.ndcg_at_k(retrieved, relevant, 4) == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_names_in_the_registry() -> None:
    assert retrieval.resolve("recall@5") == "recall_at_5"
    assert retrieval.resolve("ndcg_at_k", k=4) == "ndcg_at_4"
    assert retrieval.resolve("MRR".lower()) == "mrr"
    assert retrieval.resolve("hit_rate@3") == "hit_at_3"
    with pytest.raises(ValueError, match="needs the number of retrieved chunks"):
        retrieval.resolve("precision_at_k")
    assert not retrieval.is_retrieval_metric("recall")  # a bare word is no retrieval metric
    assert metric_info("recall_at_5").per_sample
    with pytest.raises(ValueError, match="retrieval metrics"):
        metric_info("recall_at_x")
    agg = aggregate("hit_at_1", [["a"], ["b"], None], [["a"], ["a"], ["a"]], n_resamples=50)
    assert agg.value == pytest.approx(1 / 3) and agg.n_scored == 3 and agg.ci_low is not None
