"""Metric names used in task files (``metric_list``) and the functions the engine calls.

``sample_score`` scores one record for per-sample metrics; ``aggregate`` scores a whole set of
records with a bootstrap standard error and percentile 95% interval. Conventions for a
prediction of ``None`` (no usable answer):

- classification (``acc``, ``macro_f1``, ``balanced_acc``): counts as wrong;
- answer matching and text metrics: scores 0;
- correlations (``pearson``, ``spearman``, ``kendall``): the pair is left out, and ``n_scored``
  says how many pairs were used;
- ``format_error_rate``: the share of ``None`` predictions.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hyouka.metrics import classification, correlation, llmjp, qa, retrieval, text
from hyouka.metrics.bootstrap import DEFAULT_N_RESAMPLES, BootstrapResult, bootstrap

__all__ = [
    "METRICS",
    "Aggregate",
    "MetricInfo",
    "aggregate",
    "metric_info",
    "metric_names",
    "sample_score",
]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric name means; ``tokenizer`` is set for metrics whose value depends on one."""

    name: str
    description: str
    kind: str  # "per_sample", "classification", "correlation" or "corpus_text"
    higher_is_better: bool = True
    tokenizer: str | None = None

    @property
    def per_sample(self) -> bool:
        return self.kind == "per_sample"


@dataclass(frozen=True)
class Aggregate:
    """A metric over a set of records, with the number of records it covers.

    ``n_scored`` records entered the value, out of ``n_total`` in the run (records that failed
    before scoring count in ``n_total`` only). ``note`` says why ``value`` is NaN when it is.
    """

    metric: str
    value: float
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    n_scored: int
    n_total: int
    higher_is_better: bool = True
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; NaN becomes ``None``."""
        out = asdict(self)
        if isinstance(out["value"], float) and math.isnan(out["value"]):
            out["value"] = None
        return out


_TOK = text.TOKENIZER_NAME
METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("acc", "accuracy; a None prediction is wrong", "per_sample"),
        MetricInfo("macro_f1", "macro-averaged F1 over the label set; None is wrong", "classification"),
        MetricInfo("balanced_acc", "mean per-class recall; None is wrong", "classification"),
        *(MetricInfo(name, f"MLflow's {name}: binary for the last of two sorted labels, else weighted; None is wrong",
                     "classification") for name in classification.MLFLOW_SCORES),
        MetricInfo("pearson", "Pearson's r; None predictions left out", "correlation"),
        MetricInfo("spearman", "Spearman's rho; None predictions left out", "correlation"),
        MetricInfo("kendall", "Kendall's tau-b; None predictions left out", "correlation"),
        MetricInfo("exact_match", "normalised exact match, best over golds", "per_sample"),
        MetricInfo("char_f1", "character F1 on normalised text, best over golds", "per_sample"),
        MetricInfo("format_error_rate", "share of None predictions", "per_sample", higher_is_better=False),
        MetricInfo("rouge1", "ROUGE-1 F on morphemes", "per_sample", tokenizer=_TOK),
        MetricInfo("rouge2", "ROUGE-2 F on morphemes", "per_sample", tokenizer=_TOK),
        MetricInfo("rouge_l", "ROUGE-L F on morphemes", "per_sample", tokenizer=_TOK),
        MetricInfo("rouge_lsum", "ROUGE-Lsum F (union LCS over lines) on morphemes", "per_sample", tokenizer=_TOK),
        MetricInfo("bleu", "corpus BLEU (0-1) on morphemes", "corpus_text", tokenizer=_TOK),
        MetricInfo("sentence_bleu", "mean sentence BLEU (0-1) on morphemes, sacreBLEU's effective order",
                   "per_sample", tokenizer=_TOK),
        MetricInfo("bleu_ja_mecab", "corpus BLEU (0-1) on IPADIC morphemes, as sacreBLEU's ja-mecab", "corpus_text",
                   tokenizer=text.DICTIONARIES["ipadic"]),
        MetricInfo("sentence_bleu_ja_mecab", "mean sentence BLEU (0-1) on IPADIC morphemes, as sacreBLEU's ja-mecab",
                   "per_sample", tokenizer=text.DICTIONARIES["ipadic"]),
        MetricInfo("chrf", "corpus chrF (0-1) on characters", "corpus_text"),
        MetricInfo("mae", "mean absolute error of numeric predictions", "regression", higher_is_better=False),
        MetricInfo("rmse", "root mean squared error of numeric predictions", "regression", higher_is_better=False),
        MetricInfo("r2", "coefficient of determination (sklearn's r2_score) of numeric predictions", "regression"),
        MetricInfo("ja_char_ratio", "share of kana/kanji characters in the prediction", "per_sample"),
        # llm-jp-eval v1.3.0's definitions, on the raw output and the gold text (hyouka.metrics.llmjp)
        MetricInfo("llmjp:exact_match", "llm-jp-eval exact match: NFKC answer before the first blank line",
                   "per_sample"),
        MetricInfo("llmjp:char_f1", "llm-jp-eval char_f1: thefuzz token_sort_ratio / 100", "per_sample"),
        MetricInfo("llmjp:set_f1", "llm-jp-eval set_f1: F1 of the sets of answer lines", "per_sample"),
        MetricInfo("llmjp:bleu_ja", "llm-jp-eval bleu_ja: sentence sacreBLEU, ja-mecab, effective order, / 100",
                   "per_sample", tokenizer="sacrebleu ja-mecab (MeCab + IPADIC)"),
        MetricInfo("llmjp:pearson", "llm-jp-eval pearson: scipy on parse_float answers (-2.0 if none), NaN -> 0",
                   "llmjp_correlation"),
        MetricInfo("llmjp:spearman", "llm-jp-eval spearman: scipy on parse_float answers (-2.0 if none), NaN -> 0",
                   "llmjp_correlation"),
    )
}


def metric_names() -> list[str]:
    """The metric names a task file may use."""
    return list(METRICS)


def metric_info(metric: str) -> MetricInfo:
    """The ``MetricInfo`` of ``metric``; ``ValueError`` listing the known names if unknown."""
    try:
        return METRICS[metric]
    except KeyError:
        described = retrieval.describe(str(metric))  # recall_at_5, ndcg_at_10, mrr... (hyouka.metrics.retrieval)
        if described is not None:
            return MetricInfo(str(metric), described, "per_sample")
        raise ValueError(f"unknown metric {metric!r}; known metrics: {', '.join(METRICS)}, "
                         "and retrieval metrics (hit_at_K, recall_at_K, precision_at_K, ndcg_at_K, mrr)") from None


def _text_or_none(prediction: Any) -> str | None:
    return None if prediction is None else str(prediction)


def _acc(prediction: Any, reference: Any) -> float:
    return float(prediction is not None and bool(prediction == reference))


_SAMPLE_FUNCS: dict[str, Callable[[Any, Any], float]] = {
    "acc": _acc,
    "exact_match": lambda p, r: qa.exact_match(_text_or_none(p), r),
    "char_f1": lambda p, r: qa.char_f1(_text_or_none(p), r),
    "format_error_rate": lambda p, r: float(p is None),
    "rouge1": lambda p, r: 0.0 if p is None else text.rouge_n(str(p), r, 1),
    "rouge2": lambda p, r: 0.0 if p is None else text.rouge_n(str(p), r, 2),
    "rouge_l": lambda p, r: 0.0 if p is None else text.rouge_l(str(p), r),
    "rouge_lsum": lambda p, r: 0.0 if p is None else text.rouge_lsum(str(p), r),
    "sentence_bleu": lambda p, r: text.sentence_bleu(_text_or_none(p), r),
    "sentence_bleu_ja_mecab": lambda p, r: text.sentence_bleu(_text_or_none(p), r, "ipadic"),
    "ja_char_ratio": lambda p, r: text.japanese_char_ratio(_text_or_none(p)),
    **{
        f"{llmjp.PREFIX}{name}": (lambda f: lambda p, r: f(_text_or_none(p), r))(func)
        for name, func in llmjp.SAMPLE_FUNCS.items()
    },
}


def _sample_func(metric: str) -> Callable[[Any, Any], float]:
    return _SAMPLE_FUNCS.get(metric) or retrieval.score_function(metric)  # type: ignore[return-value]


def sample_score(metric: str, prediction: Any, reference: Any) -> float | None:
    """Score of one record for a per-sample metric; ``None`` for corpus-level metrics."""
    info = metric_info(metric)
    if not info.per_sample:
        return None
    return _sample_func(metric)(prediction, reference)


def _mean_rows(scores: np.ndarray) -> np.ndarray:
    return scores.mean(axis=-1)


def _number(value: Any) -> float:
    """A number, from text too (full-width digits and point accepted, as NFKC reads them)."""
    return float(unicodedata.normalize("NFKC", value).strip()) if isinstance(value, str) else float(value)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _r2_rows(pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    residual = ((gold - pred) ** 2).sum(axis=-1)
    spread = ((gold - gold.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, 1.0 - residual / spread, np.where(residual == 0, 1.0, 0.0))


# vectorized over rows (bootstrap resamples): predictions, references -> one value per row
_REGRESSION: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mae": lambda p, g: np.abs(p - g).mean(axis=-1),
    "rmse": lambda p, g: np.sqrt(((p - g) ** 2).mean(axis=-1)),
    "r2": _r2_rows,  # as sklearn: 1 - SS_res / SS_tot; a constant gold gives 1.0 if exact, else 0.0
}


def _correlation_value(
    metric: str, x: np.ndarray, y: np.ndarray, seed: int, n_resamples: int
) -> tuple[float, BootstrapResult | None, str | None]:
    reason = correlation.degenerate_reason(x, y)
    if reason is not None:
        return float("nan"), None, reason.replace("first vector", "predictions").replace("second vector", "references")
    if metric == "pearson":
        value = correlation.pearson(x, y)
        stat, arrays = correlation.pearson_rows, (x, y)
    elif metric == "spearman":
        value = correlation.spearman(x, y)
        ux, cx = np.unique(x, return_inverse=True)
        uy, cy = np.unique(y, return_inverse=True)

        def stat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return correlation.pearson_rows(
                correlation.average_ranks_codes(a, ux.size), correlation.average_ranks_codes(b, uy.size)
            )

        arrays = (cx.ravel(), cy.ravel())
    else:
        value = correlation.kendall(x, y)
        boot = bootstrap(correlation.kendall, x, y, n_resamples=n_resamples, seed=seed) if n_resamples else None
        return value, boot, None
    boot = bootstrap(stat, *arrays, n_resamples=n_resamples, seed=seed, vectorized=True) if n_resamples else None
    return value, boot, None


def aggregate(
    metric: str,
    predictions: Sequence[Any],
    references: Sequence[Any],
    *,
    n_total: int | None = None,
    labels: Sequence[Hashable] | None = None,
    seed: int = 0,
    n_resamples: int = DEFAULT_N_RESAMPLES,
) -> Aggregate:
    """Score ``predictions`` against ``references`` with ``metric``, plus a bootstrap interval.

    ``n_total`` (default ``len(predictions)``) is the number of records in the run, including those
    that never got a prediction. ``labels`` is the label set for ``macro_f1`` / ``balanced_acc``
    (default: the distinct references). ``n_resamples=0`` skips the bootstrap.
    """
    info = metric_info(metric)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    n_items = len(predictions)
    n_total = n_items if n_total is None else n_total
    if n_total < n_items:
        raise ValueError(f"n_total={n_total} is smaller than the {n_items} predictions given")
    if n_resamples < 0:
        raise ValueError("n_resamples must be >= 0")

    def result(value: float, boot: BootstrapResult | None, n_scored: int, note: str | None = None) -> Aggregate:
        ok = boot is not None and boot.n_valid >= 2
        return Aggregate(
            metric=metric,
            value=float(value),
            stderr=boot.stderr if ok else None,
            ci_low=boot.ci_low if ok else None,
            ci_high=boot.ci_high if ok else None,
            n_scored=n_scored,
            n_total=n_total,
            higher_is_better=info.higher_is_better,
            note=note,
        )

    def run_boot(stat: Callable[..., Any], *arrays: Any) -> BootstrapResult | None:
        if not n_resamples:
            return None
        return bootstrap(stat, *arrays, n_resamples=n_resamples, seed=seed, vectorized=True)

    if info.kind in ("correlation", "regression"):
        pairs = [(p, r) for p, r in zip(predictions, references, strict=True) if not (_is_missing(p) or _is_missing(r))]
        if len(pairs) < 2:
            return result(float("nan"), None, len(pairs), f"fewer than 2 scored pairs (n={len(pairs)})")
        try:
            x = np.array([_number(p) for p, _ in pairs])
            y = np.array([_number(r) for _, r in pairs])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{metric} needs numeric predictions and references: {exc}") from None
        if info.kind == "regression":
            stat = _REGRESSION[metric]
            return result(float(stat(x[None, :], y[None, :])[0]), run_boot(stat, x, y), len(pairs))
        value, boot, note = _correlation_value(metric, x, y, seed, n_resamples)
        return result(value, boot, len(pairs), note)

    if n_items == 0:
        return result(float("nan"), None, 0, "no predictions to score")

    if info.kind == "llmjp_correlation":  # every pair counts: an unreadable answer is -2.0
        golds, answers = llmjp.correlation_inputs([_text_or_none(p) for p in predictions], list(references))
        value = llmjp.correlation(metric, golds, answers)
        boot = None
        if n_resamples and n_items >= 2:
            boot = bootstrap(lambda g, a: llmjp.correlation(metric, g, a), np.array(golds), np.array(answers),
                             n_resamples=n_resamples, seed=seed)
        return result(value, boot, n_items)

    if info.kind == "per_sample":
        func = _sample_func(metric)
        scores = np.array([func(p, r) for p, r in zip(predictions, references, strict=True)], dtype=float)
        return result(float(scores.mean()), run_boot(_mean_rows, scores), n_items)

    if info.kind == "classification":
        if metric in classification.MLFLOW_SCORES and labels is None:
            labels = classification.mlflow_labels(predictions, references)
        pred_codes, gold_codes, label_list = classification.encode_labels(predictions, references, labels)
        k = len(label_list)
        kernel = classification.macro_f1_codes if metric == "macro_f1" else classification.balanced_accuracy_codes

        def stat(p: np.ndarray, g: np.ndarray) -> np.ndarray:
            if metric in classification.MLFLOW_SCORES:
                return classification.mlflow_score_codes(p, g, k, metric)
            return kernel(p, g, k)

        return result(float(stat(pred_codes, gold_codes)), run_boot(stat, pred_codes, gold_codes), n_items)

    # corpus text metrics: per-item sufficient statistics, summed per resample
    if metric in ("bleu", "bleu_ja_mecab"):
        dictionary = "ipadic" if metric == "bleu_ja_mecab" else "unidic-lite"

        def stats_fn(p: str, r: Any) -> np.ndarray:
            return text.bleu_stats(p, r, dictionary)

        from_stats, width = text.bleu_from_stats, 2 + 2 * text.BLEU_MAX_ORDER
    else:
        stats_fn, from_stats, width = text.chrf_stats, text.chrf_from_stats, 3 * text.CHRF_CHAR_ORDER
    stats = np.array(
        [stats_fn("" if p is None else str(p), r) for p, r in zip(predictions, references, strict=True)], dtype=np.int64
    ).reshape(n_items, width)

    def corpus_stat(rows: np.ndarray) -> np.ndarray:
        return from_stats(rows.sum(axis=-2))

    return result(float(from_stats(stats.sum(axis=0))), run_boot(corpus_stat, stats), n_items)
