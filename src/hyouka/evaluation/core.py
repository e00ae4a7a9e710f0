"""``hyouka.evaluate``: evaluate a model's answers (or existing predictions) on one's own data.

As in MLflow's ``mlflow.evaluate(model_type="question-answering")``: the data's inputs go to
the model (or its predictions are read from a column), heuristic metrics compare the answers
with the ground truth, judge metrics grade them with a rubric, and the result holds the
aggregate metrics and a per-row table. The run is stored like any other (kind ``judge`` when a
judge grades, else ``benchmark``) and resumes from the store and the response cache.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.errors import ArgumentError
from hyouka.evaluation.backends import open_cache, resolve_model, spec_name
from hyouka.evaluation.data import EvalRow, EvalTable, load_table, predictions_name
from hyouka.evaluation.fewshot import FewshotError, fewshot_messages, fewshot_prefix, pick_fewshot
from hyouka.evaluation.heuristics import canonical_heuristic, heuristic_aggregates, needs_target, row_scores
from hyouka.evaluation.records import row_record, table_from_samples
from hyouka.judge.grading import Judgment, run_calls
from hyouka.judge.metrics import JudgeMetric, MissingInputError, is_judge_metric, judge_metric
from hyouka.judge.runs import RunRecorder, call_stats
from hyouka.judge.summary import summarize_scores
from hyouka.metrics.text import tokenizer_info
from hyouka.models.base import ChatRequest, GenerateRequest, GenerationParams, Message, Model, Request, Response
from hyouka.models.registry import recordable_options
from hyouka.pricing.table import PriceTable
from hyouka.store.store import Store

__all__ = ["EvaluationResult", "FewshotError", "answer_request", "evaluate"]

Progress = Callable[[int, int], None]
DEFAULT_METRICS_WITH_TARGETS = ("exact_match", "char_f1", "rouge_l", "ja_char_ratio", "answer_tokens")
DEFAULT_METRICS = ("ja_char_ratio", "answer_tokens")
MODEL_TYPES = ("question-answering", "text")  # MLflow's names; both answer the data's inputs


@dataclass
class EvaluationResult:
    """Aggregate metrics, the per-row table, and the stored run's id."""

    run_id: str
    model: str
    judge: str | None
    metrics: dict[str, float | None]
    aggregates: dict[str, dict[str, Any]]
    table: pd.DataFrame
    resumed: bool = False
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    reused: bool = False  # a completed run taken up again (``reuse_completed``): nothing was run

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """MLflow's name for the per-row table."""
        return {"eval_results_table": self.table}

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model": self.model, "judge": self.judge, "metrics": self.metrics,
                "aggregates": self.aggregates, "statuses": self.statuses, "calls": self.calls,
                "resumed": self.resumed}


def _metric_list(metrics: Sequence[Any] | str | None) -> list[Any]:
    if isinstance(metrics, str):
        return [m.strip() for m in metrics.split(",") if m.strip()]
    return list(metrics or [])


def _split_metrics(
    metrics: Sequence[Any] | str | None,
    extra: Sequence[Any] | str | None,
    language: str,
    has_targets: bool,
    has_model: bool,
) -> tuple[list[str], list[JudgeMetric]]:
    """Heuristic metric names and judge metrics; with no ``metrics``, the defaults (plus ``extra``)."""
    if metrics is None:
        names: list[Any] = list(DEFAULT_METRICS_WITH_TARGETS if has_targets else DEFAULT_METRICS)
        if has_model:
            names.append("latency")
    else:
        names = _metric_list(metrics)
    names += _metric_list(extra)
    heuristics, judged = [], []
    for spec in names:
        if is_judge_metric(spec):
            judged.append(judge_metric(spec, language))
            continue
        name = canonical_heuristic(str(spec))
        if name is None:
            from hyouka.evaluation.heuristics import HEURISTIC_METRICS
            from hyouka.judge.metrics import BUILTIN_JUDGE_METRICS

            raise ValueError(f"unknown metric {spec!r}; heuristic: {', '.join(HEURISTIC_METRICS)}; "
                             f"judge: {', '.join(BUILTIN_JUDGE_METRICS)} or a rubric .yaml file")
        if name == "latency" and not has_model:
            raise ValueError("the latency metric needs a model to call (existing predictions have no latency)")
        if needs_target(name) and not has_targets:
            raise ArgumentError(f"metric {name} needs a ground truth column: give {{targets}}", targets="'<column>'")
        if name == "token_count":  # its encoding loads (or says how to provide it) before any model call
            from hyouka.metrics.tokens import cl100k_base

            cl100k_base()
        heuristics.append(name)
    return list(dict.fromkeys(heuristics)), judged


def answer_request(row: EvalRow, model: Model, params: GenerationParams, system_prompt: str | None = None,
                   shots: Sequence[EvalRow] = ()) -> Request:
    """The request asking ``model`` to answer a row (after ``shots``, solved examples): a chat message when
    it chats, else a prompt."""
    text = row.inputs or ""
    if model.capabilities.chat:
        messages = (Message("system", system_prompt),) if system_prompt else ()
        return ChatRequest((*messages, *fewshot_messages(shots), Message("user", text)), params)
    text = fewshot_prefix(shots) + text
    return GenerateRequest(f"{system_prompt}\n\n{text}" if system_prompt else text, params)


def _judge_fields(row: EvalRow, prediction: str) -> dict[str, str | None]:
    return {"question": row.inputs, "answer": prediction, "ground_truth": row.ground_truth_text,
            "context": row.context}


class _Judges:
    """One executor per distinct judge (the evaluation's, or a metric's own)."""

    def __init__(self, default: str | Model | None, metrics: Sequence[JudgeMetric], cache: ResponseCache | None,
                 options: dict[str, Any] | None) -> None:
        self.by_metric: dict[str, str] = {}
        self.specs: dict[str, str | Model] = {}
        for m in metrics:
            chosen = m.judge if m.judge is not None else default
            if chosen is None:
                raise ArgumentError(f"judge metric {m.name} needs a judge: give {{judge}}", judge="'openai:gpt-4o'")
            key = spec_name(chosen)
            self.by_metric[m.name] = key
            self.specs.setdefault(key, chosen)
        self.executors = {k: Executor(resolve_model(s, options), cache) for k, s in self.specs.items()}

    def identities(self) -> dict[str, Any]:
        return {k: e.model.identity() for k, e in self.executors.items()}

    @property
    def main(self) -> str | None:
        return next(iter(self.specs), None)


def evaluate(
    model: str | Model | None = None,
    data: str | Path | pd.DataFrame | Sequence[dict[str, Any]] | None = None,
    *,
    targets: str | None = None,
    predictions: str | None = None,
    inputs: str | None = None,
    context: str | None = None,
    id_column: str | None = None,
    metrics: Sequence[Any] | str | None = None,
    extra_metrics: Sequence[Any] | str | None = None,
    judge: str | Model | None = None,
    model_type: str = "question-answering",
    language: str = "ja",
    max_tokens: int = 256,
    system_prompt: str | None = None,
    judge_max_tokens: int = 1024,
    limit: int | None = None,
    store: Store | str | None = None,
    cache: ResponseCache | str | Path | bool = True,
    resume: str | None = None,
    progress: Progress | None = None,
    judge_options: dict[str, Any] | None = None,
    seed: int = 0,
    prices: PriceTable | str | Path | None = None,
    encoding: str = "utf-8",
    num_fewshot: int = 0,
    reuse_completed: bool = False,
    index: Any = None,
    k: int | None = None,
    rag_prompt: str | Path | None = None,
    relevant: str | None = None,
    **model_options: Any,
) -> EvaluationResult:
    """Evaluate ``model`` (or the ``predictions`` column) on ``data`` with ``metrics`` (+ ``extra_metrics``).

    ``metrics`` mixes heuristic names (``exact_match``, ``char_f1``, ``rouge1``, ``rouge2``,
    ``rouge_l``, ``bleu``, ``chrf``, ``ja_char_ratio``, ``answer_tokens``, ``token_count``, ``latency``) and judge
    metrics (``answer_correctness``… by name, a rubric file, or ``hyouka.judge.metrics.answer_correctness(judge)``);
    judge metrics use ``judge`` unless they carry their own. ``language`` picks the rubrics'
    language (``ja`` or ``en``). ``model_options`` go to the model's backend, ``judge_options``
    to the judge's. ``model_type`` is accepted as in MLflow (``question-answering`` or ``text``).
    ``prices`` (a table, or a YAML file consulted before the default table) prices the recorded calls
    (the judge's in a judged run) in the run's accounting. ``encoding`` is the data file's text encoding
    (e.g. ``cp932`` for Shift-JIS). ``num_fewshot`` asks each row after that many solved examples,
    other rows of the data with their ground truth in a ``seed``-ed order (see
    :mod:`hyouka.evaluation.fewshot`); the judge sees only the row. ``reuse_completed`` returns the
    completed run of the same configuration, if the store has one, instead of making a new one (the
    ladder's cells).

    RAG: with ``index`` (a :class:`hyouka.rag.Index` or the name of one), each row's inputs are the
    question: its ``k`` best chunks (default 4) are retrieved, put in the RAG prompt (``rag_prompt``: a
    template file, default the built-in ``rag_qa`` in ``language``) that the model answers, and they are
    the context that judge metrics (``faithfulness``, ``relevance``, ``context_relevance``,
    ``context_recall``) read. Where the ``relevant`` column (default: ``relevant_doc_ids``,
    ``gold_doc_ids``… if present) names each question's documents, retrieval metrics are scored:
    ``hit_at_K``, ``recall_at_K``, ``precision_at_K``, ``ndcg_at_K``, ``mrr`` (``recall@5``; MLflow's
    ``recall_at_k`` takes ``k``). Each sample keeps its chunks and ids in ``details["retrieval"]``.
    """
    if data is None:
        raise ValueError("give data: a DataFrame, a list of records, or a .csv/.jsonl/.json/.parquet path")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type {model_type!r} is not supported; one of: {', '.join(MODEL_TYPES)}")
    if model is not None and predictions is not None:
        raise ValueError("give a model to call or a predictions column to read, not both")
    table = load_table(data, inputs=inputs, targets=targets, context=context, predictions=predictions,
                       id_column=id_column, limit=limit, encoding=encoding)
    if model is None and table.columns["predictions"] is None:
        raise ArgumentError("no model and no predictions column: give {model} or {predictions}", model="…",
                            predictions="'<column>'")
    if model is not None and table.columns["inputs"] is None:
        present = ", ".join(table.rows[0].fields) if table.rows else "none"
        raise ArgumentError(f"no inputs column to send to the model: give {{inputs}}; columns: {present}",
                            inputs="'<column>'")
    if num_fewshot and model is None:
        raise ValueError("num_fewshot needs a model to ask (existing predictions were made without examples)")
    shots = pick_fewshot(table.rows, num_fewshot, seed) if num_fewshot else {}
    the_cache = open_cache(cache)
    rag, metrics, extra_metrics, retrieval_names = _rag_step(index, k, table, model, metrics, extra_metrics,
                                                             rag_prompt, language, the_cache, relevant, prices)
    heuristics, judged = _split_metrics(metrics, extra_metrics, language, table.columns["targets"] is not None,
                                        model is not None)
    the_store = store if isinstance(store, Store) else Store(store)
    backend = resolve_model(model, model_options) if model is not None else None
    subject = spec_name(model) if model is not None else predictions_name(table.source, table.columns["predictions"])
    judges = _Judges(judge, judged, the_cache, judge_options)
    model_exec = Executor(backend, the_cache) if backend is not None else None
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    config = {
        "task": f"eval:{table.source}",
        "subject_model": subject,
        "model_identity": backend.identity() if backend else None,
        "model_options": recordable_options(model_options),
        "data": {"source": table.source, "sha256": table.digest, "columns": table.columns, "n_rows": len(table.rows)},
        "limit": limit,
        "metrics": heuristics,
        "judge_metrics": [m.describe() for m in judged],
        "judges": judges.identities(),
        "max_tokens": max_tokens if backend else None,
        "system_prompt": system_prompt,
        "judge_max_tokens": judge_max_tokens,
        "language": language,
        "tokenizer": tokenizer_info(),
        "seed": seed,
    }
    if num_fewshot:  # only when asked: the runs made before few-shot existed keep their configuration's hash
        config["num_fewshot"] = num_fewshot
    if rag is not None:  # only RAG runs have these keys: other runs keep their configuration hash
        config.update(rag=rag.describe(), retrieval_metrics=retrieval_names)
    kind = "judge" if judged else "benchmark"
    executors = [e for e in (model_exec, *judges.executors.values(), rag.executor if rag else None) if e is not None]
    recorder = RunRecorder(
        the_store, kind=kind, model=judges.main if judged else subject, task=config["task"], mode="qa",
        config=config, n_samples=len(table.rows), executors=executors, resume=resume,
        model_identity=(judges.identities()[judges.main] if judged else config["model_identity"]) or {},
        prices=prices, reuse_completed=reuse_completed,
    )
    with recorder:
        _run_rows(table, recorder, backend, model_exec, judges, judged, heuristics, params, system_prompt,
                  GenerationParams(max_tokens=judge_max_tokens, temperature=0.0), progress, shots, rag,
                  retrieval_names)
        samples = recorder.samples()
        aggregates = heuristic_aggregates(heuristics, samples, len(table.rows), seed)
        if rag is not None:
            aggregates += rag.aggregates(retrieval_names, samples, len(table.rows), seed)
        for m in judged:
            details = [((s.get("details") or {}).get("judge") or {}).get(m.name) or {} for s in samples]
            scores = [d.get("score") for d in details]
            statuses = [d.get("status", s["status"]) for d, s in zip(details, samples, strict=True)]
            aggregates.append(summarize_scores(m.name, scores, statuses, n_total=len(table.rows), seed=seed).to_row())
        statuses = dict(Counter(s["status"] for s in samples))
        calls = call_stats(model=model_exec, **{f"judge:{k}": e for k, e in judges.executors.items()},
                           retrieval=rag.executor if rag else None)
        stats = {"statuses": statuses, "calls": calls, "tokenizer": tokenizer_info()}
        if rag is not None:
            stats["retrieval"] = rag.accounting(samples, recorder.duration_s)
        recorder.finish(aggregates, stats)
    by_name = {a["metric"]: a for a in aggregates}
    return EvaluationResult(
        run_id=recorder.run_id,
        model=subject,
        judge=judges.main,
        metrics={name: a["value"] for name, a in by_name.items()},
        aggregates=by_name,
        table=table_from_samples(samples, [*heuristics, *retrieval_names], [m.name for m in judged]),
        resumed=recorder.resumed,
        calls=calls,
        statuses=statuses,
        reused=recorder.reused,
    )


def _rag_step(
    index: Any, k: int | None, table: EvalTable, model: Any, metrics: Any, extra_metrics: Any,
    rag_prompt: str | Path | None, language: str, cache: ResponseCache | None, relevant: str | None, prices: Any,
) -> tuple[Any, Any, Any, list[str]]:
    """The retrieval step of a RAG evaluation (``None`` without ``index``), the metrics left to the rest of the
    evaluation, and the retrieval metrics."""
    from hyouka.rag.run import RagStep, split_retrieval_metrics

    if index is None:
        if k is not None:
            raise ArgumentError("k is the number of chunks retrieved per question: give {index} too",
                                index="'<name>'")
        _, found = split_retrieval_metrics(metrics, 1)
        _, extra = split_retrieval_metrics(extra_metrics, 1)
        if found or extra:
            raise ArgumentError(f"retrieval metric {(found or extra)[0]} needs an index to retrieve from: give "
                                "{index}", index="'<name>'")
        return None, metrics, extra_metrics, []
    if model is None:
        raise ArgumentError("a RAG evaluation needs a model to answer the questions: give {model}", model="…")
    columns = list(table.rows[0].fields) if table.rows else []
    rag = RagStep(index, k, prompt=rag_prompt, language=language, cache=cache, relevant=relevant, columns=columns,
                  prices=prices)
    rest, names = split_retrieval_metrics(metrics, rag.k)
    extra_rest, extra_names = split_retrieval_metrics(extra_metrics, rag.k)
    names = list(dict.fromkeys(names + extra_names)) if metrics is not None else \
        list(dict.fromkeys(rag.default_metrics() + extra_names))
    if names and rag.relevant_column is None:
        raise ArgumentError(f"retrieval metric {names[0]} needs each question's relevant document ids: give "
                            "{relevant} (a column of ids)", relevant="'<column>'")
    return rag, rest, extra_rest, names


def _run_rows(
    table: EvalTable,
    recorder: RunRecorder,
    backend: Model | None,
    model_exec: Executor | None,
    judges: _Judges,
    judged: Sequence[JudgeMetric],
    heuristics: Sequence[str],
    params: GenerationParams,
    system_prompt: str | None,
    judge_params: GenerationParams,
    progress: Progress | None,
    shots: dict[int, list[EvalRow]],
    rag: Any = None,
    retrieval_names: Sequence[str] = (),
) -> None:
    """Answer, score and judge the rows not yet recorded, writing each row's record when it is complete.

    With ``rag`` (a :class:`hyouka.rag.run.RagStep`), each row's chunks are retrieved first: they become
    the row's context, and the model answers the RAG prompt built from them.
    """
    todo = [row for row in table.rows if row.index not in recorder.done]
    retrieved = rag.retrieve(todo) if rag is not None else {}
    if rag is not None:
        todo = [replace(row, context=retrieved[row.index].context or None) for row in todo]
    done = len(table.rows) - len(todo)
    answers: dict[int, Response | None] = {row.index: None for row in todo}
    results: dict[int, dict[str, Judgment | str]] = defaultdict(dict)

    def finish(row: EvalRow) -> None:
        nonlocal done
        answer = answers[row.index]
        prediction = row.prediction if backend is None else (answer.text if answer and answer.ok else None)
        scores = row_scores(heuristics, prediction, row.ground_truth, answer.latency_s if answer else None)
        record = row_record(row, answer, prediction, scores, results.get(row.index, {}), judges.by_metric,
                            kind="judge" if judged else "benchmark")
        if rag is not None:
            record = rag.annotate(record, retrieved[row.index], retrieval_names)
        recorder.add(record)
        done += 1
        if progress:
            progress(done, len(table.rows))

    if progress:
        progress(done, len(table.rows))
    if model_exec is not None and backend is not None:
        asking = [row for row in todo if rag is None or retrieved[row.index].ok]  # a failed retrieval asks nothing
        requests = [answer_request(replace(row, inputs=retrieved[row.index].prompt) if rag is not None else row,
                                   backend, params, system_prompt, shots.get(row.index, ())) for row in asking]
        for position, response in model_exec.execute(requests):
            answers[asking[position].index] = response
            if not judged:
                finish(asking[position])
        if not judged:
            asked = {row.index for row in asking}
            for row in todo:
                if row.index not in asked:
                    finish(row)
            return
    calls_by_judge: dict[str, list[tuple[EvalRow, str, Any]]] = defaultdict(list)
    pending: dict[int, int] = {}
    for row in todo:
        answer = answers[row.index]
        prediction = row.prediction if backend is None else (answer.text if answer and answer.ok else None)
        if prediction is None:
            continue
        for m in judged:
            try:
                call = m.call(_judge_fields(row, prediction), {"row": row.id})
            except MissingInputError as exc:
                results[row.index][m.name] = f"missing_input: {exc}"
                continue
            calls_by_judge[judges.by_metric[m.name]].append((row, m.name, call))
            pending[row.index] = pending.get(row.index, 0) + 1
    for row in todo:
        if not pending.get(row.index):
            finish(row)
    for key, items in calls_by_judge.items():
        for k, judgment in run_calls(judges.executors[key], [c for _, _, c in items], judge_params):
            row, name, _ = items[k]
            results[row.index][name] = judgment
            pending[row.index] -= 1
            if pending[row.index] == 0:
                finish(row)

