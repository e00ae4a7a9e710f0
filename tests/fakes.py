"""A scripted backend for engine tests: deterministic answers, call counting, injected failures."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hyouka.models.base import Capabilities, ChatRequest, GenerateRequest, LoglikelihoodRequest, Request, Response


def _pseudo_logprob(context: str, continuation: str) -> float:
    digest = hashlib.sha256((context + "\x00" + continuation).encode()).digest()
    return -1.0 - digest[0] / 16.0


class ScriptedModel:
    """Implements the backend protocol; records every request it is sent."""

    def __init__(
        self,
        *,
        answer: Callable[[str], str] | None = None,
        fail: Callable[[Request], bool] | None = None,
        interrupt_after: int | None = None,
        batch_size: int = 8,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.name = "scripted"
        self.capabilities = capabilities or Capabilities(loglikelihood=True, generate=True, chat=True)
        self.calls: list[Request] = []
        self._answer = answer or (lambda prompt: "わかりません")
        self._fail = fail or (lambda request: False)
        self._interrupt_after = interrupt_after
        self._batch_size = batch_size

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted", "name": self.name}

    def _serve(self, requests: Sequence[Request], one: Callable[[Any], Response]) -> Iterator[tuple[int, Response]]:
        for start in range(0, len(requests), self._batch_size):
            batch = list(enumerate(requests))[start : start + self._batch_size]
            if self._interrupt_after is not None and len(self.calls) + len(batch) > self._interrupt_after:
                raise KeyboardInterrupt
            for index, request in batch:
                self.calls.append(request)
                if self._fail(request):
                    yield index, Response.failure("HTTP 500 from scripted server")
                else:
                    yield index, one(request)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> Iterator[tuple[int, Response]]:
        return self._serve(
            requests,
            lambda r: Response(logprob=_pseudo_logprob(r.context, r.continuation), is_greedy=False,
                               prompt_tokens=len(r.context), latency_s=0.01),
        )

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        return self._serve(
            requests,
            lambda r: Response(text=self._answer(r.prompt), prompt_tokens=len(r.prompt), completion_tokens=3,
                               latency_s=0.02),
        )

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        return self._serve(
            requests,
            lambda r: Response(text=self._answer(r.messages[-1].content), prompt_tokens=10, completion_tokens=3,
                               latency_s=0.02),
        )
