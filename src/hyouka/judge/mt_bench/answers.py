"""A chat model's answers to MT-Bench, turn by turn: turn 2 is asked with turn 1's answer in the conversation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hyouka.engine.executor import Executor
from hyouka.judge.mt_bench.data import TEMPERATURES, Question
from hyouka.models.base import ChatRequest, GenerationParams, Message, Response
from hyouka.models.recorded import tag_request

__all__ = ["AnswerKey", "collect_answers"]

AnswerKey = tuple[str, int]  # (question_id, turn)
DEFAULT_MAX_TOKENS = 1024  # FastChat's max_new_token for answers


def _params(question: Question, max_tokens: int) -> GenerationParams:
    return GenerationParams(max_tokens=max_tokens, temperature=TEMPERATURES.get(question.category, 0.7))


def collect_answers(
    executor: Executor,
    questions: Sequence[Question],
    wanted: Mapping[str, set[int]],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    known: Mapping[AnswerKey, Response] | None = None,
    on_answer: Callable[[AnswerKey, Response], None] | None = None,
) -> dict[AnswerKey, Response]:
    """Answers for the ``wanted`` turns of each question (turn 1 is fetched whenever turn 2 is wanted).

    ``known`` answers (e.g. from a resumed run's records) are reused without a call.
    """
    known = dict(known or {})
    model = executor.model
    out: dict[AnswerKey, Response] = {}
    first: list[tuple[Question, ChatRequest]] = []
    for q in questions:
        if not wanted.get(q.question_id):
            continue
        if (q.question_id, 1) in known:
            out[(q.question_id, 1)] = known[(q.question_id, 1)]
            continue
        request = ChatRequest((Message("user", q.turns[0]),), _params(q, max_tokens))
        first.append((q, tag_request(model, request, {"question_id": q.question_id, "turn": 1})))
    for index, response in executor.execute([r for _, r in first]):
        key = (first[index][0].question_id, 1)
        out[key] = response
        if on_answer:
            on_answer(key, response)

    second: list[tuple[Question, ChatRequest]] = []
    for q in questions:
        a1 = out.get((q.question_id, 1))
        if 2 not in wanted.get(q.question_id, set()) or len(q.turns) < 2 or a1 is None or not a1.ok:
            continue
        if (q.question_id, 2) in known:
            out[(q.question_id, 2)] = known[(q.question_id, 2)]
            continue
        messages = (Message("user", q.turns[0]), Message("assistant", a1.text or ""), Message("user", q.turns[1]))
        request = ChatRequest(messages, _params(q, max_tokens))
        second.append((q, tag_request(model, request, {"question_id": q.question_id, "turn": 2})))
    for index, response in executor.execute([r for _, r in second]):
        key = (second[index][0].question_id, 2)
        out[key] = response
        if on_answer:
            on_answer(key, response)
    return out
