"""Heuristic metrics of an evaluation, computed by :mod:`hyouka.metrics` (Japanese-correct).

Exact match and character F1 after NFKC; ROUGE-1/2/L and BLEU on MeCab morphemes (the
tokenizer is named in each aggregate's note); chrF on characters; the answer's length in
morphemes (``answer_tokens``) and in tiktoken cl100k_base tokens as MLflow counts (``token_count``);
the model's latency; the share of Japanese characters in the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hyouka.judge.summary import summarize_scores
from hyouka.metrics.registry import aggregate, metric_info, sample_score
from hyouka.metrics.text import answer_length_tokens
from hyouka.metrics.tokens import token_count

__all__ = ["HEURISTIC_METRICS", "canonical_heuristic", "heuristic_aggregates", "needs_target", "row_scores"]

_REGISTRY = (
    "exact_match", "char_f1", "rouge1", "rouge2", "rouge_l", "rouge_lsum", "bleu", "sentence_bleu", "chrf",
    "bleu_ja_mecab", "sentence_bleu_ja_mecab", "ja_char_ratio",
    "mae", "rmse", "r2",  # numeric predictions against numeric targets (MLflow's regressor metrics)
    "precision_score", "recall_score", "f1_score",  # label columns (MLflow's classifier metrics)
    # llm-jp-eval v1.3.0's definitions (hyouka.metrics.llmjp), named as such
    "llmjp:exact_match", "llmjp:char_f1", "llmjp:set_f1", "llmjp:bleu_ja", "llmjp:pearson", "llmjp:spearman",
)
_LOCAL = ("answer_tokens", "token_count", "latency")
HEURISTIC_METRICS = (*_REGISTRY, *_LOCAL)
_ALIASES = {
    "japanese_char_ratio": "ja_char_ratio",
    "morpheme_count": "answer_tokens",
    "answer_length": "answer_tokens",
    "rougeL": "rouge_l",
    "rougeLsum": "rouge_lsum",
    "rouge-l": "rouge_l",
    "latency_s": "latency",
    "em": "exact_match",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "r2_score": "r2",
    "precision": "precision_score",
    "recall": "recall_score",
    "f1": "f1_score",
}
_NO_TARGET = ("ja_char_ratio", *_LOCAL)


def canonical_heuristic(name: str) -> str | None:
    """The heuristic metric a name (or alias) means, or ``None``."""
    name = _ALIASES.get(name, name)
    return name if name in HEURISTIC_METRICS else None


def needs_target(name: str) -> bool:
    return name not in _NO_TARGET


def _per_row(name: str) -> bool:
    return name in _LOCAL or metric_info(name).per_sample


def row_scores(
    names: Sequence[str], prediction: str | None, ground_truth: Any, latency_s: float | None
) -> dict[str, float]:
    """Per-row values of the per-row metrics among ``names`` (corpus metrics have none)."""
    out: dict[str, float] = {}
    for name in names:
        if not _per_row(name):
            continue
        if name == "latency":
            if latency_s is not None:
                out[name] = float(latency_s)
        elif name == "answer_tokens":
            if prediction is not None:
                out[name] = float(answer_length_tokens(prediction))
        elif name == "token_count":
            if prediction is not None:
                out[name] = float(token_count(prediction))
        elif not needs_target(name) or ground_truth is not None:
            value = sample_score(name, prediction, ground_truth if ground_truth is not None else "")
            if value is not None:
                out[name] = float(value)
    return out


def heuristic_aggregates(
    names: Sequence[str], samples: Sequence[dict[str, Any]], n_total: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Store-ready aggregates; rows without an answer (failed calls) or, where needed, a ground truth are
    left out of the value and counted in ``n_total``."""
    answered = [s for s in samples if s["prediction"] is not None]
    out = []
    for name in names:
        if name in _LOCAL:
            values = [(s.get("metrics") or {}).get(name) for s in samples]
            summary = summarize_scores(name, values, n_total=n_total, higher_is_better=name != "latency", seed=seed)
            out.append(summary.to_row())
            continue
        rows = [s for s in answered if s["reference"] is not None] if needs_target(name) else answered
        agg = aggregate(name, [s["prediction"] for s in rows], [s["reference"] for s in rows],
                        n_total=n_total, seed=seed).to_dict()
        notes = [agg["note"]] if agg["note"] else []
        if needs_target(name) and len(rows) < len(answered):
            notes.append(f"{len(answered) - len(rows)} answered rows have no ground truth")
        tokenizer = metric_info(name).tokenizer
        if tokenizer:
            notes.append(f"tokenizer {tokenizer}")
        agg["note"] = "; ".join(notes) or None
        out.append(agg)
    return out
