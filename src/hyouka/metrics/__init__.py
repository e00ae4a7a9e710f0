"""Metrics: pure functions of predictions and references (numpy, scipy, fugashi only).

Modules: ``normalize`` (NFKC, answer normalisation), ``qa`` (exact match, char F1),
``classification``, ``correlation``, ``bootstrap``, ``text`` (Japanese ROUGE/BLEU/chrF) and
``registry`` (metric names in task files, ``sample_score`` and ``aggregate``).
The bootstrap lives in ``hyouka.metrics.bootstrap`` (not re-exported: the name is the module's).
"""

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
