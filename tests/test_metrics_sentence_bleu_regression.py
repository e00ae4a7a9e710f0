"""sentence_bleu (sacreBLEU's effective order on morphemes) and mae/rmse/r2, against sacreBLEU and sklearn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hyouka
from hyouka.metrics.registry import aggregate, sample_score
from hyouka.metrics.text import bleu, tokenize_ja

sacrebleu = pytest.importorskip("sacrebleu")
sk_metrics = pytest.importorskip("sklearn.metrics")


def test_sentence_bleu_matches_sacrebleu_effective_order(jglue_dir: Path) -> None:
    rows = [json.loads(line) for line in (jglue_dir / "jsts-v1.3" / "valid-v1.3.json").read_text().splitlines()[:60]]
    pairs = [(r["sentence2"], r["sentence1"]) for r in rows]
    pairs += [("猫", "猫"), ("東京都", "東京都"), ("東京", "京都"), ("", "猫"), ("犬が好き", "猫が好き")]
    for hyp, ref in pairs:
        expected = sacrebleu.sentence_bleu(" ".join(tokenize_ja(hyp)), [" ".join(tokenize_ja(ref))],
                                           tokenize="none").score / 100
        assert sample_score("sentence_bleu", hyp, ref) == pytest.approx(expected, abs=1e-12), (hyp, ref)
    # an exact copy of a short answer scores 1 (corpus BLEU without effective order gives 0)
    assert sample_score("sentence_bleu", "東京都", "東京都") == pytest.approx(1.0)
    assert bleu(["東京都"], ["東京都"]) == 0.0


def test_regression_metrics_match_sklearn() -> None:
    gold = [0.0, 1.2, 2.5, 3.0, 4.8, 5.0, 2.2]
    pred = ["0.5", "1", "２．５", "4", "4.0", "5", "1.0"]
    numbers = [0.5, 1.0, 2.5, 4.0, 4.0, 5.0, 1.0]
    assert aggregate("mae", pred, gold).value == pytest.approx(sk_metrics.mean_absolute_error(gold, numbers))
    assert aggregate("rmse", pred, gold).value == pytest.approx(sk_metrics.mean_squared_error(gold, numbers) ** 0.5)
    assert aggregate("r2", pred, gold).value == pytest.approx(sk_metrics.r2_score(gold, numbers))
    assert aggregate("r2", [1, 1], [2, 2], n_resamples=0).value == sk_metrics.r2_score([2, 2], [1, 1])


def test_evaluate_takes_mlflow_regressor_names(tmp_path: Path) -> None:
    rows = [{"inputs": str(i), "answer": str(p), "ground_truth": str(g)}
            for i, (p, g) in enumerate([(1, 1.5), (2, 2), (3, 2.5), (4, 5)])]
    result = hyouka.evaluate(data=rows, predictions="answer", targets="ground_truth",
                             metrics=["mean_absolute_error", "r2_score", "sentence_bleu"],
                             store=f"sqlite:///{tmp_path / 's.sqlite'}", cache=False)
    assert result.metrics["mae"] == pytest.approx(sk_metrics.mean_absolute_error([1.5, 2, 2.5, 5], [1, 2, 3, 4]))
    assert result.metrics["r2"] == pytest.approx(sk_metrics.r2_score([1.5, 2, 2.5, 5], [1, 2, 3, 4]))


def test_rouge_lsum_matches_rouge_score_on_morphemes(jglue_dir: Path) -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

    class Morphemes:
        def tokenize(self, text: str) -> list[str]:
            return tokenize_ja(text)

    scorer = rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=Morphemes())
    rows = [json.loads(line) for line in (jglue_dir / "jsts-v1.3" / "valid-v1.3.json").read_text().splitlines()[:40]]
    pairs = [(f"{a['sentence2']}\n{b['sentence1']}", f"{a['sentence1']}\n{b['sentence2']}\n{b['sentence1']}")
             for a, b in zip(rows[::2], rows[1::2], strict=True)]
    pairs += [("猫が好き\n\n犬も好き", "犬が好き\n猫も好き"), ("", "猫"), ("猫", "猫")]
    for pred, ref in pairs:
        expected = scorer.score(ref, pred)["rougeLsum"].fmeasure
        assert sample_score("rouge_lsum", pred, ref) == pytest.approx(expected, abs=1e-12), (pred, ref)
