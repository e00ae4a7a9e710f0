"""Metrics: pure functions of predictions and references (numpy, scipy, fugashi only).

Modules: ``normalize`` (NFKC, answer normalisation), ``qa`` (exact match, char F1),
``classification``, ``correlation``, ``bootstrap``, ``text`` (Japanese ROUGE/BLEU/chrF),
``llmjp`` (llm-jp-eval's definitions, with thefuzz and sacreBLEU), ``tokens`` (tiktoken's
cl100k_base count, as MLflow's ``token_count``) and ``registry`` (metric names in task files,
``sample_score`` and ``aggregate``).
The bootstrap lives in ``hyouka.metrics.bootstrap`` (not re-exported: the name is the module's).
The names below are imported on first use, so importing one small module of the package
(``hyouka.metrics.suite`` for the leaderboard) does not load the tokenizer and every metric.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyouka.metrics.classification import accuracy, balanced_accuracy, macro_f1
    from hyouka.metrics.correlation import kendall, pearson, spearman
    from hyouka.metrics.normalize import nfkc, normalize_answer
    from hyouka.metrics.qa import char_f1, exact_match
    from hyouka.metrics.registry import (
        METRICS,
        Aggregate,
        MetricInfo,
        aggregate,
        metric_info,
        metric_names,
        sample_score,
    )
    from hyouka.metrics.text import (
        TOKENIZER_NAME,
        answer_length_tokens,
        bleu,
        chrf,
        japanese_char_ratio,
        rouge_l,
        rouge_n,
        tokenize_ja,
        tokenizer_info,
    )

_LAZY = {
    "accuracy": "hyouka.metrics.classification",
    "balanced_accuracy": "hyouka.metrics.classification",
    "macro_f1": "hyouka.metrics.classification",
    "kendall": "hyouka.metrics.correlation",
    "pearson": "hyouka.metrics.correlation",
    "spearman": "hyouka.metrics.correlation",
    "nfkc": "hyouka.metrics.normalize",
    "normalize_answer": "hyouka.metrics.normalize",
    "char_f1": "hyouka.metrics.qa",
    "exact_match": "hyouka.metrics.qa",
    "METRICS": "hyouka.metrics.registry",
    "Aggregate": "hyouka.metrics.registry",
    "MetricInfo": "hyouka.metrics.registry",
    "aggregate": "hyouka.metrics.registry",
    "metric_info": "hyouka.metrics.registry",
    "metric_names": "hyouka.metrics.registry",
    "sample_score": "hyouka.metrics.registry",
    "TOKENIZER_NAME": "hyouka.metrics.text",
    "answer_length_tokens": "hyouka.metrics.text",
    "bleu": "hyouka.metrics.text",
    "chrf": "hyouka.metrics.text",
    "japanese_char_ratio": "hyouka.metrics.text",
    "rouge_l": "hyouka.metrics.text",
    "rouge_n": "hyouka.metrics.text",
    "tokenize_ja": "hyouka.metrics.text",
    "tokenizer_info": "hyouka.metrics.text",
}

__all__ = [
    "METRICS",
    "TOKENIZER_NAME",
    "Aggregate",
    "MetricInfo",
    "accuracy",
    "aggregate",
    "answer_length_tokens",
    "balanced_accuracy",
    "bleu",
    "char_f1",
    "chrf",
    "exact_match",
    "japanese_char_ratio",
    "kendall",
    "macro_f1",
    "metric_info",
    "metric_names",
    "nfkc",
    "normalize_answer",
    "pearson",
    "rouge_l",
    "rouge_n",
    "sample_score",
    "spearman",
    "tokenize_ja",
    "tokenizer_info",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyouka.metrics' has no attribute {name!r}")
