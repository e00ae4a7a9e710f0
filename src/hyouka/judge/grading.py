"""Judge calls through the engine: one request per judgment, one bounded repair on a parse failure.

Every call goes through an :class:`~hyouka.engine.executor.Executor`, so judge prompts share
the response cache, deduplication, the backend's concurrency and retries, and call counts
with every other request. A judgment whose text cannot be read gets exactly one follow-up
("answer again in this format") in the same conversation; if that fails too, it stays a
``parse_error`` with both raw texts kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hyouka.engine.executor import Executor
from hyouka.judge.context import JudgeContextError, context_overflow, explain
from hyouka.judge.parse import Parsed
from hyouka.models.base import ChatRequest, GenerationParams, Message, Response
from hyouka.models.recorded import tag_request

__all__ = ["DEFAULT_JUDGE_PARAMS", "JudgeCall", "Judgment", "run_calls"]

DEFAULT_JUDGE_PARAMS = GenerationParams(max_tokens=1024, temperature=0.0)


@dataclass(frozen=True)
class JudgeCall:
    """One judgment to obtain: the prompt, how to read the answer, and how to ask again."""

    messages: tuple[Message, ...]
    parse: Callable[[str | None], Parsed]
    repair: Callable[[str], str] | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    response_format: str | None = None  # a JSON schema, sent to judges with structured output


@dataclass
class Judgment:
    """A judge's verdict on one item, with its raw text, status and cost.

    ``status`` is ``ok``, ``parse_error`` (text unreadable even after the repair request),
    ``context_exceeded`` (the server refused the prompt as longer than its context), or the
    failure type of the call (``api_error``, ``timeout``, ``not_recorded``…).
    ``raw`` is the judge's first text; ``repair_raw`` its answer to the repair request.
    """

    value: Any = None
    justification: str | None = None
    status: str = "ok"
    raw: str | None = None
    error: str | None = None
    repaired: bool = False
    repair_raw: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False
    n_calls: int = 1
    responses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _add(a: float | int | None, b: float | int | None) -> Any:
    return b if a is None else a if b is None else a + b


def _read(call: JudgeCall, response: Response) -> Judgment:
    base = Judgment(
        raw=response.text,
        latency_s=response.latency_s,
        prompt_tokens=response.prompt_tokens,
        completion_tokens=response.completion_tokens,
        cached=response.cached,
        responses=[response.to_dict()],
    )
    if not response.ok:
        base.status, base.error = response.error_type or "api_error", response.error
        return base
    parsed = call.parse(response.text)
    if parsed.ok:
        base.value, base.justification = parsed.value, parsed.justification
    else:
        base.status, base.error = "parse_error", parsed.error
    return base


def _fits_context(judgment: Judgment, call: JudgeCall, params: GenerationParams, judge: str) -> Judgment:
    """A failed call refused for its length gets status ``context_exceeded`` and an error saying what to
    change; a completion budget that no prompt can fit stops the run (``JudgeContextError``)."""
    overflow = context_overflow(judgment.error)
    if overflow is None:
        return judgment
    message = explain(overflow, judge, params.max_tokens, sum(len(m.content) for m in call.messages),
                      judgment.error or "")
    if overflow.budget_too_large:
        raise JudgeContextError(message)
    judgment.status, judgment.error = "context_exceeded", message
    return judgment


def _merge(first: Judgment, call: JudgeCall, response: Response) -> Judgment:
    """The outcome after the repair request: its reading if it worked, else still a ``parse_error``."""
    second = _read(call, response)
    if second.ok:
        error = None
    elif not response.ok:
        error = f"{first.error}; the repair request failed: {second.error}"
    else:
        error = f"{first.error}; after the repair request: {second.error}"
    return Judgment(
        value=second.value,
        justification=second.justification,
        status="ok" if second.ok else "parse_error",
        raw=first.raw,
        error=error,
        repaired=True,
        repair_raw=response.text,
        latency_s=_add(first.latency_s, response.latency_s),
        prompt_tokens=_add(first.prompt_tokens, response.prompt_tokens),
        completion_tokens=_add(first.completion_tokens, response.completion_tokens),
        cached=first.cached and response.cached,
        n_calls=2,
        responses=[*first.responses, response.to_dict()],
    )


def call_params(model: Any, call: JudgeCall, params: GenerationParams = DEFAULT_JUDGE_PARAMS) -> GenerationParams:
    """The generation parameters of ``call``: with its JSON schema for judges that honour one."""
    if model.capabilities.structured_output and call.response_format is not None:
        return replace(params, response_format=call.response_format)
    return params


def call_request(model: Any, call: JudgeCall, params: GenerationParams = DEFAULT_JUDGE_PARAMS) -> Any:
    """The first request ``call`` sends to the judge ``model`` (what dry runs price and the cache keys)."""
    return tag_request(model, ChatRequest(call.messages, call_params(model, call, params)), call.tags)


def run_calls(
    executor: Executor, calls: Sequence[JudgeCall], params: GenerationParams = DEFAULT_JUDGE_PARAMS
) -> Iterator[tuple[int, Judgment]]:
    """Yield ``(index, Judgment)`` for every call as it completes; repairs come after the first round."""
    model = executor.model

    def params_for(call: JudgeCall) -> GenerationParams:
        return call_params(model, call, params)

    requests = [call_request(model, c, params) for c in calls]
    waiting: list[tuple[int, Judgment]] = []
    for index, response in executor.execute(requests):
        judgment = _read(calls[index], response)
        if not response.ok:
            judgment = _fits_context(judgment, calls[index], params_for(calls[index]), model.name)
        if judgment.status == "parse_error" and calls[index].repair is not None:
            waiting.append((index, judgment))
        else:
            yield index, judgment
    if not waiting:
        return
    repairs = []
    for index, first in waiting:
        call = calls[index]
        assert call.repair is not None
        follow_up = (Message("assistant", first.raw or ""), Message("user", call.repair(first.error or "")))
        repair = ChatRequest(call.messages + follow_up, params_for(call))
        repairs.append(tag_request(model, repair, {**call.tags, "repair": 1}))
    for k, response in executor.execute(repairs):
        index, first = waiting[k]
        yield index, _merge(first, calls[index], response)
