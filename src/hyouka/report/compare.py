"""Compare two runs sample by sample: metric differences with paired bootstrap intervals, and what changed.

Samples are paired by document id (by sample index when ids are missing or repeated). A
per-sample metric's difference is the mean of the paired differences (B − A); a corpus metric
(correlation, macro-F1…) is recomputed on both runs for each resample of the pairs. Either way
the interval comes from resampling *pairs*, so it reflects the correlation between the runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hyouka.metrics.bootstrap import bootstrap
from hyouka.metrics.registry import METRICS, aggregate

if TYPE_CHECKING:
    from hyouka.store.store import Store

_SCORED = ("ok", "format_error", "parse_error")


@dataclass
class MetricDiff:
    """B − A for one metric over the paired samples."""

    metric: str
    kind: str  # "per_sample" or "corpus"
    value_a: float | None
    value_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    n_pairs: int
    n_better: int | None = None  # pairs where B scores better than A (per-sample metrics)
    n_worse: int | None = None
    n_same: int | None = None
    higher_is_better: bool = True
    note: str | None = None

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.ci_low is not None and self.ci_high is not None and (self.ci_low > 0 or self.ci_high < 0)


@dataclass
class ChangedExample:
    """A paired sample whose prediction or scores differ between the runs."""

    key: str
    sample_index_a: int
    sample_index_b: int
    question: str  # the document's own text (the task's doc_to_text), without instruction or few-shot examples
    prompt: str
    output_a: str | None
    output_b: str | None
    prediction_a: Any
    prediction_b: Any
    reference: Any
    metrics_a: dict[str, float]
    metrics_b: dict[str, float]
    status_a: str
    status_b: str
    delta: float | None  # change of the primary metric, B − A


@dataclass
class Comparison:
    run_a: dict[str, Any]
    run_b: dict[str, Any]
    paired_by: str
    n_pairs: int
    only_a: int
    only_b: int
    metrics: list[MetricDiff] = field(default_factory=list)
    changed: list[ChangedExample] = field(default_factory=list)
    n_changed: int = 0
    # of the changed examples: B better / worse / the same on the primary metric (the table's +, − and =)
    n_changed_better: int = 0
    n_changed_worse: int = 0
    n_changed_same: int = 0
    primary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        keep = ("id", "model", "task", "mode", "kind", "config_hash", "task_hash", "status")
        return {
            "run_a": {k: self.run_a.get(k) for k in keep},
            "run_b": {k: self.run_b.get(k) for k in keep},
            "paired_by": self.paired_by,
            "n_pairs": self.n_pairs,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "primary": self.primary,
            "metrics": [{**asdict(m), "significant": m.significant} for m in self.metrics],
            "n_changed": self.n_changed,
            "n_changed_better": self.n_changed_better,
            "n_changed_worse": self.n_changed_worse,
            "n_changed_same": self.n_changed_same,
            "changed": [asdict(c) for c in self.changed],
        }


Pairs = list[tuple[dict[str, Any], dict[str, Any]]]


def _pair(samples_a: list[dict[str, Any]], samples_b: list[dict[str, Any]]) -> tuple[str, Pairs, int, int]:
    def unique_ids(samples: list[dict[str, Any]]) -> bool:
        ids = [s.get("doc_id") for s in samples]
        return all(ids) and len(set(ids)) == len(ids)

    field_name = "doc_id" if unique_ids(samples_a) and unique_ids(samples_b) else "sample_index"
    index_b = {str(s[field_name]): s for s in samples_b}
    pairs = [(a, index_b[str(a[field_name])]) for a in samples_a if str(a[field_name]) in index_b]
    return field_name, pairs, len(samples_a) - len(pairs), len(samples_b) - len(pairs)


def _higher_is_better(metric: str, aggregates: dict[str, dict[str, Any]]) -> bool:
    if metric in aggregates:
        return bool(aggregates[metric].get("higher_is_better", True))
    info = METRICS.get(metric)
    return True if info is None else info.higher_is_better


def _per_sample_diff(metric: str, pairs: list[tuple[dict, dict]], higher: bool, n_resamples: int, seed: int,
                     confidence: float) -> MetricDiff:
    rows = [(a["metrics"][metric], b["metrics"][metric]) for a, b in pairs
            if metric in (a.get("metrics") or {}) and metric in (b.get("metrics") or {})]
    values = [(float(x), float(y)) for x, y in rows if x is not None and y is not None]
    if not values:
        return MetricDiff(metric, "per_sample", None, None, None, None, None, 0, higher_is_better=higher,
                          note="no pair has this metric in both runs")
    a = np.array([x for x, _ in values])
    b = np.array([y for _, y in values])
    d = b - a
    ci_low = ci_high = None
    if len(d) >= 2 and n_resamples:
        boot = bootstrap(lambda x: x.mean(axis=-1), d, n_resamples=n_resamples, seed=seed, confidence=confidence,
                         vectorized=True)
        if boot.n_valid >= 2:
            ci_low, ci_high = boot.ci_low, boot.ci_high
    sign = 1.0 if higher else -1.0
    return MetricDiff(
        metric, "per_sample", float(a.mean()), float(b.mean()), float(d.mean()), ci_low, ci_high, len(d),
        n_better=int((sign * d > 0).sum()), n_worse=int((sign * d < 0).sum()), n_same=int((d == 0).sum()),
        higher_is_better=higher,
    )


def _corpus_diff(metric: str, pairs: list[tuple[dict, dict]], higher: bool, labels: list[Any] | None,
                 n_resamples: int, seed: int, confidence: float) -> MetricDiff:
    scored = [(a, b) for a, b in pairs if a["status"] in _SCORED and b["status"] in _SCORED]
    pred_a = [a["prediction"] for a, _ in scored]
    pred_b = [b["prediction"] for _, b in scored]
    refs = [a["reference"] for a, _ in scored]

    def value(preds: list[Any], idx: Any = None) -> float:
        if idx is not None:
            preds = [preds[i] for i in idx]
            gold = [refs[i] for i in idx]
        else:
            gold = refs
        return aggregate(metric, preds, gold, labels=labels, n_resamples=0).value

    if not scored:
        return MetricDiff(metric, "corpus", None, None, None, None, None, 0, higher_is_better=higher,
                          note="no pair was scored in both runs")
    va, vb = value(pred_a), value(pred_b)
    ci_low = ci_high = None
    note = None
    if METRICS[metric].kind == "corpus_text":
        note = "no interval for corpus text metrics (recomputing them per resample is too slow)"
    elif n_resamples and len(scored) >= 2:
        boot = bootstrap(lambda idx: value(pred_b, idx) - value(pred_a, idx), np.arange(len(scored)),
                         n_resamples=n_resamples, seed=seed, confidence=confidence)
        if boot.n_valid >= 2:
            ci_low, ci_high = boot.ci_low, boot.ci_high
    diff = vb - va if not (math.isnan(va) or math.isnan(vb)) else None
    return MetricDiff(metric, "corpus", _finite(va), _finite(vb), diff, ci_low, ci_high, len(scored),
                      higher_is_better=higher, note=note)


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _task_spec(task: str) -> Any:
    from hyouka.tasks.registry import load_task

    try:
        return load_task(task)
    except (ValueError, OSError):
        return None


def _labels(spec: Any) -> list[Any] | None:
    if spec is None:
        return None
    return list(range(len(spec.doc_to_choice or []))) if spec.output_type == "multiple_choice" else None


def _question(spec: Any, sample: dict[str, Any]) -> str:
    """The text of the sample's document as the task shows it (its ``doc_to_text``), else the prompt's last part."""
    from hyouka.tasks.prompts import PromptError, render

    doc = sample.get("doc") or {}
    if spec is not None and spec.doc_to_text and doc:
        try:
            return render(spec.doc_to_text, doc)
        except PromptError:
            pass
    prompt = (sample.get("prompt") or "").rstrip()
    return prompt.rsplit("\n\n", 1)[-1]


def compare_runs(
    store: Store,
    run_a: str,
    run_b: str,
    *,
    metrics: list[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    max_changed: int | None = 50,
) -> Comparison:
    """Differences B − A on the paired samples of two runs of the same task, and the examples that changed."""
    a = store.get_run(run_a)
    b = store.get_run(run_b)
    if a["task"] != b["task"]:
        raise ValueError(f"runs {a['id']} ({a['task']}) and {b['id']} ({b['task']}) are on different tasks")
    samples_a, samples_b = store.samples(a["id"]), store.samples(b["id"])
    paired_by, pairs, only_a, only_b = _pair(samples_a, samples_b)
    agg_a, agg_b = store.aggregates(a["id"]), store.aggregates(b["id"])

    per_sample = list(dict.fromkeys(n for s, t in pairs for n in (s.get("metrics") or {}) if n in (t.get("metrics")
                                                                                                   or {})))
    corpus = [m for m in dict.fromkeys([*agg_a, *agg_b]) if m not in per_sample and m in METRICS]
    wanted = metrics or [*per_sample, *corpus]
    unknown = [m for m in wanted if m not in per_sample and m not in corpus]
    if unknown:
        raise ValueError(f"metrics {unknown} are in neither run; available: {[*per_sample, *corpus]}")
    spec = _task_spec(a["task"])
    labels = _labels(spec)
    out = Comparison(a, b, paired_by, len(pairs), only_a, only_b)
    for metric in wanted:
        higher = _higher_is_better(metric, agg_a or agg_b)
        if metric in per_sample:
            out.metrics.append(_per_sample_diff(metric, pairs, higher, n_resamples, seed, confidence))
        else:
            out.metrics.append(_corpus_diff(metric, pairs, higher, labels, n_resamples, seed, confidence))

    out.primary = next((m for m in wanted if m in per_sample), None)
    changed = [_changed(x, y, paired_by, out.primary, _question(spec, x)) for x, y in pairs if _differs(x, y)]
    changed.sort(key=lambda c: (-(abs(c.delta) if c.delta is not None else 0.0), c.sample_index_a))
    out.n_changed = len(changed)
    sign = 1.0 if out.primary is None or _higher_is_better(out.primary, agg_a or agg_b) else -1.0
    out.n_changed_better = sum(1 for c in changed if c.delta is not None and sign * c.delta > 0)
    out.n_changed_worse = sum(1 for c in changed if c.delta is not None and sign * c.delta < 0)
    out.n_changed_same = out.n_changed - out.n_changed_better - out.n_changed_worse
    out.changed = changed if max_changed is None else changed[:max_changed]
    return out


def _differs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("prediction") != b.get("prediction") or (a.get("metrics") or {}) != (b.get("metrics") or {})
            or a.get("status") != b.get("status"))


def _changed(a: dict[str, Any], b: dict[str, Any], paired_by: str, primary: str | None,
             question: str) -> ChangedExample:
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    delta = None
    if primary and primary in ma and primary in mb and ma[primary] is not None and mb[primary] is not None:
        delta = float(mb[primary]) - float(ma[primary])
    return ChangedExample(
        key=str(a[paired_by]), sample_index_a=a["sample_index"], sample_index_b=b["sample_index"], question=question,
        prompt=a.get("prompt") or "", output_a=a.get("output"), output_b=b.get("output"),
        prediction_a=a.get("prediction"), prediction_b=b.get("prediction"), reference=a.get("reference"),
        metrics_a=ma, metrics_b=mb, status_a=a["status"], status_b=b["status"], delta=delta,
    )
