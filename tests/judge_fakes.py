"""Test doubles for judge tests: a scripted judge backend that answers from the whole conversation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hyouka.models.base import Capabilities, ChatRequest, GenerateRequest, Message, Response


class ScriptedJudge:
    """A chat backend whose reply is ``respond(messages)``; it records every conversation it is sent.

    Served behind the local OpenAI-compatible server it plays a judge endpoint; used directly it is a
    judge backend. A repair request is a conversation of more than two messages.
    """

    def __init__(self, respond: Callable[[tuple[Message, ...]], str], name: str = "scripted-judge") -> None:
        self.name = name
        self.capabilities = Capabilities(chat=True, generate=True)
        self.respond = respond
        self.conversations: list[tuple[Message, ...]] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted-judge", "name": self.name}

    def loglikelihood(self, requests: Sequence[Any]) -> Iterator[tuple[int, Response]]:
        raise NotImplementedError

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            yield index, self._reply((Message("user", request.prompt),))

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            yield index, self._reply(request.messages)

    def _reply(self, messages: tuple[Message, ...]) -> Response:
        self.conversations.append(messages)
        text = self.respond(messages)
        return Response(text=text, prompt_tokens=sum(len(m.content) for m in messages), completion_tokens=len(text),
                        latency_s=0.001)

    @property
    def repairs(self) -> int:
        return sum(1 for c in self.conversations if is_repair(c))


def is_repair(messages: Sequence[Message]) -> bool:
    return len(messages) > 2 and messages[-2].role == "assistant"


def prompt_of(messages: Sequence[Message]) -> str:
    """The grading prompt (the first user message) of a conversation."""
    return next(m.content for m in messages if m.role == "user")
