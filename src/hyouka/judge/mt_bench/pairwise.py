"""Japanese MT-Bench, pairwise: two models' answers compared by a judge, in both orders, per turn."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.judge.grading import JudgeCall
from hyouka.judge.mt_bench.answers import DEFAULT_MAX_TOKENS, collect_answers
from hyouka.judge.mt_bench.data import (
    DEFAULT_REFERENCE,
    file_digest,
    load_questions,
    load_reference_answers,
    mt_bench_dir,
)
from hyouka.judge.mt_bench.prompts import pair_prompt, verdict_call
from hyouka.judge.mt_bench.single import JUDGE_MAX_TOKENS, TASK_NAME, Item, answer_status, judgment_status
from hyouka.judge.pairwise import PairOutcome, pair_metrics, pair_summaries, run_pairs, win_rates
from hyouka.judge.prompts import mt_bench_prompt_version
from hyouka.judge.runs import JudgeRunResult, RunRecorder, call_stats
from hyouka.models.base import GenerationParams, Message, Model, Response
from hyouka.pricing.table import PriceTable
from hyouka.store.store import Store

__all__ = ["run_pairwise"]

Progress = Callable[[int, int], None]


def _record(item: Item, answers: dict[str, Response], outcome: PairOutcome | None, failed: Response | None,
            names: tuple[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    q = item.question
    if outcome is None:
        assert failed is not None
        status, error = answer_status(failed), failed.error
    else:
        status = "ok" if outcome.status == "ok" else judgment_status(outcome.ab if not outcome.ab.ok else outcome.ba)
        error = outcome.error
    return {
        "sample_index": item.index,
        "doc_id": f"{q.question_id}:{item.turn}",
        "doc": {"question_id": q.question_id, "category": q.category, "turn": item.turn, "turns": list(q.turns)},
        "prompt": q.turns[item.turn - 1],
        "requests": [],
        "responses": [*outcome.ab.responses, *outcome.ba.responses] if outcome else [],
        "output": None,
        "extracted": None,
        "prediction": outcome.winner if outcome else None,
        "reference": None,
        "metrics": pair_metrics(outcome) if outcome else {},
        "details": {
            "model_a": names[0],
            "model_b": names[1],
            "answer_a": answers["a"].text if "a" in answers else None,
            "answer_b": answers["b"].text if "b" in answers else None,
            "pair": outcome.to_dict() if outcome else None,
            "judge_prompt_name": extra.get("prompt_name"),
        },
        "status": status,
        "error": error,
        "latency_s": None,
        "prompt_tokens": None,
        "completion_tokens": None,
    }


def run_pairwise(
    model_a: Model,
    spec_a: str,
    model_b: Model,
    spec_b: str,
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
    prices: PriceTable | str | Path | None = None,
) -> JudgeRunResult:
    """Compare ``model_a`` and ``model_b`` on MT-Bench, each item judged with both orders."""
    root = mt_bench_dir(data_dir)
    questions = load_questions(root)[:limit] if limit else load_questions(root)
    references = load_reference_answers(root, reference)
    items = [Item(i, q, t) for i, (q, t) in enumerate((q, t) for q in questions for t in sorted(turns))]
    exec_a, exec_b, judge_exec = Executor(model_a, cache), Executor(model_b, cache), Executor(judge, cache)
    config = {
        "task": TASK_NAME, "mode": "pairwise", "model_a": spec_a, "model_b": spec_b,
        "subject_model": f"{spec_a} vs {spec_b}", "model_a_identity": model_a.identity(),
        "model_b_identity": model_b.identity(), "judge": judge_spec, "judge_identity": judge.identity(),
        "data_dir": str(root), "questions_sha256": file_digest(root / "question.jsonl"), "reference": reference,
        "turns": sorted(turns), "limit": limit, "max_tokens": max_tokens, "judge_max_tokens": judge_max_tokens,
        "language": language, "prompts_version": mt_bench_prompt_version(language_rule),
    }
    recorder = RunRecorder(
        store, kind="pairwise", model=judge_spec, task=TASK_NAME, mode="pairwise", config=config,
        n_samples=len(items), executors=[exec_a, exec_b, judge_exec], resume=resume,
        task_version=mt_bench_prompt_version(language_rule), model_identity=judge.identity(),
        prices=prices,
    )
    names = (model_a.name, model_b.name)
    with recorder:
        todo = [it for it in items if it.index not in recorder.done]
        wanted: dict[str, set[int]] = {}
        for it in todo:
            wanted.setdefault(it.question.question_id, set()).add(it.turn)
        got_a = collect_answers(exec_a, questions, wanted, max_tokens=max_tokens)
        got_b = collect_answers(exec_b, questions, wanted, max_tokens=max_tokens)
        done_count = len(items) - len(todo)

        ready, pairs, extras = [], [], []
        for it in todo:
            qid = it.question.question_id
            seq_a = [got_a.get((qid, t)) for t in range(1, it.turn + 1)]
            seq_b = [got_b.get((qid, t)) for t in range(1, it.turn + 1)]
            failed = next((r for r in [*seq_a, *seq_b] if r is None or not r.ok), None)
            if failed is not None or any(r is None for r in [*seq_a, *seq_b]):
                missing = failed or Response.failure("no answer", "not_recorded")
                recorder.add(_record(it, {}, None, missing, names, {}))
                done_count += 1
                continue
            ready.append(it)
            pairs.append(([r.text or "" for r in seq_a], [r.text or "" for r in seq_b]))  # type: ignore[union-attr]
            extras.append({})

        def build(k: int, first: Any, second: Any) -> tuple[Message, ...]:
            it = ready[k]
            name, messages = pair_prompt(it.question, it.turn, first, second,
                                         references.get(it.question.question_id), language, language_rule)
            extras[k]["prompt_name"] = name
            return messages

        def make_call(k: int, messages: tuple[Message, ...], order: str) -> JudgeCall:
            it = ready[k]
            first, second = names if order == "ab" else names[::-1]
            tags = {"question_id": it.question.question_id, "model_a": first, "model_b": second, "turn": it.turn}
            return verdict_call(messages, tags, language)

        params = GenerationParams(max_tokens=judge_max_tokens, temperature=0.0)
        for k, outcome in run_pairs(judge_exec, pairs, build, make_call, params):  # type: ignore[arg-type]
            it = ready[k]
            qid = it.question.question_id
            answers = {"a": got_a[(qid, it.turn)], "b": got_b[(qid, it.turn)]}
            recorder.add(_record(it, answers, outcome, None, names, extras[k]))
            done_count += 1
            if progress:
                progress(done_count, len(items))

        samples = recorder.samples()
        summaries = pair_summaries(samples)
        outcomes = [s["details"]["pair"] or {"status": s["status"]} for s in samples]
        stats = {
            "statuses": dict(Counter(s["status"] for s in samples)),
            "calls": call_stats(model_a=exec_a, model_b=exec_b, judge=judge_exec),
            "win_rates": win_rates(outcomes),
        }
        recorder.finish([s.to_row() for s in summaries], stats)
    return JudgeRunResult(
        run_id=recorder.run_id, kind="pairwise", task=TASK_NAME, mode="pairwise", model=f"{spec_a} vs {spec_b}",
        judge=judge_spec, aggregates={s.metric: s.to_dict() for s in summaries}, n_samples=len(items),
        resumed=recorder.resumed, calls=stats["calls"], extra={"win_rates": stats["win_rates"],
                                                               "statuses": stats["statuses"]},
    )
