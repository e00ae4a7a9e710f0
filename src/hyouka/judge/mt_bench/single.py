"""Japanese MT-Bench, single-answer grading: answers from a chat model, 1-10 grades from a judge.

One sample per (question, turn). The run is a ``judge`` run whose ``model`` is the judge and
whose ``config['subject_model']`` is the model answering. Scores are over the turns that were
judged, and every aggregate says how many (the published Japanese judgments cover turn 1 only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.judge.grading import Judgment, run_calls
from hyouka.judge.mt_bench.answers import DEFAULT_MAX_TOKENS, AnswerKey, collect_answers
from hyouka.judge.mt_bench.data import (
    DEFAULT_REFERENCE,
    Question,
    file_digest,
    load_questions,
    load_reference_answers,
    mt_bench_dir,
)
from hyouka.judge.mt_bench.prompts import SCALE, rating_call, single_prompt
from hyouka.judge.mt_bench.scores import single_scores
from hyouka.judge.prompts import mt_bench_prompt_version
from hyouka.judge.runs import JudgeRunResult, RunRecorder, call_stats
from hyouka.models.base import GenerationParams, Model, Response
from hyouka.models.recorded import NOT_RECORDED
from hyouka.models.registry import recordable_options
from hyouka.pricing.table import PriceTable
from hyouka.store.store import Store

__all__ = ["TASK_NAME", "run_single"]

TASK_NAME = "ja_mt_bench"
JUDGE_MAX_TOKENS = 2048  # FastChat's judge max_tokens
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Item:
    index: int
    question: Question
    turn: int


def _recordable(options: dict[str, Any] | None) -> dict[str, Any]:
    """Options that change answers (throughput settings and secrets left out)."""
    skip = ("batch_size", "concurrency")
    return {k: v for k, v in recordable_options(options).items() if k not in skip}


def answer_status(response: Response) -> str:
    return "no_answer" if response.error_type == NOT_RECORDED else (response.error_type or "api_error")


def judgment_status(judgment: Judgment) -> str:
    return "not_judged" if judgment.status == NOT_RECORDED else judgment.status


def _known_answers(samples: Sequence[dict[str, Any]]) -> dict[AnswerKey, Response]:
    """Answers already recorded by an earlier attempt of the run (reused without a call)."""
    out: dict[AnswerKey, Response] = {}
    for s in samples:
        answer = (s.get("details") or {}).get("answer") or {}
        if answer.get("error") is None and s.get("output") is not None:
            out[(str(s["doc"]["question_id"]), int(s["doc"]["turn"]))] = Response.from_dict(answer)
    return out


def _record(item: Item, answer: Response | None, judgment: Judgment | None, extra: dict[str, Any]) -> dict[str, Any]:
    q = item.question
    if answer is None or not answer.ok:
        status = answer_status(answer) if answer is not None else "no_answer"
        error = answer.error if answer is not None else "turn 1 has no answer"
    else:
        assert judgment is not None
        status, error = judgment_status(judgment), judgment.error
    score = judgment.value if judgment is not None and judgment.ok else None
    return {
        "sample_index": item.index,
        "doc_id": f"{q.question_id}:{item.turn}",
        "doc": {"question_id": q.question_id, "category": q.category, "turn": item.turn, "turns": list(q.turns)},
        "prompt": q.turns[item.turn - 1],
        "requests": [],
        "responses": judgment.responses if judgment is not None else [],
        "output": answer.text if answer is not None and answer.ok else None,
        "extracted": None,
        "prediction": score,
        "reference": extra.get("reference"),
        "metrics": {"score": score} if score is not None else {},
        "details": {
            "answer": answer.to_dict() if answer is not None else None,
            "judge": {k: v for k, v in judgment.to_dict().items() if k != "responses"} if judgment else None,
            "justification": judgment.justification if judgment is not None else None,
            "judge_prompt_name": extra.get("prompt_name"),
            "judge_prompt": extra.get("prompt"),
        },
        "status": status,
        "error": error,
        "latency_s": judgment.latency_s if judgment is not None else None,
        "prompt_tokens": judgment.prompt_tokens if judgment is not None else None,
        "completion_tokens": judgment.completion_tokens if judgment is not None else None,
    }


def run_single(
    model: Model,
    model_spec: str,
    judge: Model,
    judge_spec: str,
    *,
    store: Store,
    cache: ResponseCache | None = None,
    data_dir: str | Path | None = None,
    reference: str = DEFAULT_REFERENCE,
    turns: Sequence[int] = (1, 2),
    limit: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    judge_max_tokens: int = JUDGE_MAX_TOKENS,
    language: str = "ja",
    language_rule: bool = True,
    resume: str | None = None,
    progress: Progress | None = None,
    model_options: dict[str, Any] | None = None,
    judge_options: dict[str, Any] | None = None,
    prices: PriceTable | str | Path | None = None,
) -> JudgeRunResult:
    """Answer MT-Bench with ``model``, grade every turn with ``judge``, store and return the scores.

    ``model_options`` and ``judge_options`` (the backends' options, without secrets) are only
    recorded, so that the run can be resumed by id. ``prices`` (a table, or a YAML file consulted
    before the default table) prices the judge's calls in the run's accounting.
    """
    root = mt_bench_dir(data_dir)
    questions = load_questions(root)[:limit] if limit else load_questions(root)
    references = load_reference_answers(root, reference)
    items = [Item(i, q, t) for i, (q, t) in enumerate((q, t) for q in questions for t in sorted(turns))]
    model_exec, judge_exec = Executor(model, cache), Executor(judge, cache)
    config = {
        "task": TASK_NAME,
        "mode": "single",
        "subject_model": model_spec,
        "subject_name": model.name,
        "model_identity": model.identity(),
        "judge": judge_spec,
        "judge_identity": judge.identity(),
        "data_dir": str(root),
        "questions_sha256": file_digest(root / "question.jsonl"),
        "reference": reference,
        "turns": sorted(turns),
        "limit": limit,
        "max_tokens": max_tokens,
        "judge_max_tokens": judge_max_tokens,
        "language": language,
        "language_rule": language_rule,
        "prompts_version": mt_bench_prompt_version(language_rule),
        "model_options": _recordable(model_options),
        "judge_options": _recordable(judge_options),
    }
    recorder = RunRecorder(
        store, kind="judge", model=judge_spec, task=TASK_NAME, mode="single", config=config, n_samples=len(items),
        executors=[model_exec, judge_exec], resume=resume, model_identity=judge.identity(),
        task_version=mt_bench_prompt_version(language_rule), prices=prices,
    )
    with recorder:
        todo = [it for it in items if it.index not in recorder.done]
        done_count = len(items) - len(todo)
        if progress:
            progress(done_count, len(items))
        wanted: dict[str, set[int]] = {}
        for it in todo:
            wanted.setdefault(it.question.question_id, set()).add(it.turn)
        answers = collect_answers(model_exec, questions, wanted, max_tokens=max_tokens,
                                  known=_known_answers(store.samples(recorder.run_id)))

        calls, judged_items, extras = [], [], []
        for it in todo:
            qid = it.question.question_id
            got = [answers.get((qid, t)) for t in range(1, it.turn + 1)]
            if any(a is None or not a.ok for a in got):
                missing = next(a for a in reversed(got) if a is None or not a.ok)
                recorder.add(_record(it, missing, None, {}))
                done_count += 1
                if progress:
                    progress(done_count, len(items))
                continue
            refs = references.get(qid)
            texts = [a.text or "" for a in got]  # type: ignore[union-attr]
            name, messages = single_prompt(it.question, it.turn, texts, refs, language, language_rule)
            tags = {"question_id": qid, "model": model.name, "turn": it.turn}
            calls.append(rating_call(messages, tags, language))
            judged_items.append(it)
            extras.append({"prompt_name": name, "prompt": messages[-1].content,
                           "reference": refs[it.turn - 1] if refs and name.startswith("single-math") else None})
        params = GenerationParams(max_tokens=judge_max_tokens, temperature=0.0)
        for k, judgment in run_calls(judge_exec, calls, params):
            it = judged_items[k]
            answer = answers[(it.question.question_id, it.turn)]
            recorder.add(_record(it, answer, judgment, extras[k]))
            done_count += 1
            if progress:
                progress(done_count, len(items))

        samples = recorder.samples()
        summaries = single_scores(samples)
        statuses = Counter(s["status"] for s in samples)
        stats = {
            "statuses": dict(statuses),
            "calls": call_stats(model=model_exec, judge=judge_exec),
            "model_calls": model_exec.stats.model_calls + judge_exec.stats.model_calls,
            "scale": list(SCALE),
            "scores": {s.metric: s.to_dict() for s in summaries},
        }
        recorder.finish([s.to_row() for s in summaries], stats)
    return JudgeRunResult(
        run_id=recorder.run_id,
        kind="judge",
        task=TASK_NAME,
        mode="single",
        model=model_spec,
        judge=judge_spec,
        aggregates={s.metric: s.to_dict() for s in summaries},
        n_samples=len(items),
        resumed=recorder.resumed,
        calls=stats["calls"],
        extra={"statuses": dict(statuses)},
    )
