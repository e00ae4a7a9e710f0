"""Spending limits: a metered model wrapper that fills token counts and enforces a cost ceiling.

:class:`MeteredModel` wraps any backend. It fills token counts the API did not report, adds
each call's cost to a shared :class:`Budget`, and, when the budget has a ceiling, sends
requests in chunks whose estimated cost (prompt tokens + ``max_tokens`` of output, scaled up
when actual costs have run over estimates) fits in half of what is left, so a run stops
*before* the ceiling; within a chunk, each response re-checks that the next call still fits
(a backend that yields lazily is then not asked for it). Should actual costs still cross the
ceiling, the next response raises :class:`BudgetExceededError`; the runner then records the run as
interrupted, and running the same command again resumes it. Calls served from the response
cache never reach the wrapper, so they cost nothing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyouka.engine.accounting import TokenCounter, fill_tokens, request_text, response_cost, token_counter
from hyouka.models.base import Capabilities, Model, Request, RequestKind, Response, dispatch
from hyouka.pricing.table import Price

_PROBE = 8  # requests sent before a time-priced model's cost per call is known


class BudgetExceededError(RuntimeError):
    """The next call would take spending past the ceiling (or it already has)."""

    def __init__(self, spent: float, ceiling: float, message: str | None = None) -> None:
        self.spent = spent
        self.ceiling = ceiling
        super().__init__(
            message
            or f"stopped at ${spent:.4f} spent: the next calls would pass --max-cost ${ceiling:.4f}; "
            "finished samples are stored and running the same command again resumes the run"
        )


@dataclass
class Budget:
    """Money spent by the calls of one session, against an optional ceiling (USD)."""

    ceiling: float | None = None
    spent: float = 0.0
    calls: int = 0
    busy_s: float = 0.0
    estimated: float = 0.0  # what the calls charged so far were estimated to cost
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def remaining(self) -> float:
        return math.inf if self.ceiling is None else self.ceiling - self.spent

    def charge(self, cost: float | None, latency_s: float | None, estimate: float | None = None) -> None:
        with self._lock:
            self.spent += cost or 0.0
            self.calls += 1
            self.busy_s += latency_s or 0.0
            if cost is not None and estimate is not None:
                self.estimated += estimate

    def scale(self) -> float:
        """How much actual costs have exceeded their estimates so far (at least 1)."""
        return max(1.0, self.spent / self.estimated) if self.estimated > 0 else 1.0

    @property
    def exceeded(self) -> bool:
        return self.ceiling is not None and self.spent > self.ceiling

    def mean_latency(self) -> float | None:
        return self.busy_s / self.calls if self.calls else None


def estimated_tokens(request: Request, count: TokenCounter) -> tuple[int, int]:
    """(prompt tokens, at most this many completion tokens) of one request."""
    prompt = count(request_text(request))
    params = getattr(request, "params", None)  # an embedding has none: it completes nothing
    completion = 1 if request.kind == "loglikelihood" else (params.max_tokens if params is not None else 0)
    return prompt, completion


def estimated_cost(
    price: Price | None, request: Request, count: TokenCounter, seconds_per_call: float | None = None
) -> float | None:
    """An upper estimate of one call's cost; ``None`` when the price needs a time not yet measured."""
    if price is None:
        return None
    prompt, completion = estimated_tokens(request, count)
    if price.gpu_hour is not None and seconds_per_call is None:
        return None
    return price.call_cost(prompt, completion, seconds_per_call)


class MeteredModel:
    """A backend wrapper that fills token counts, charges a :class:`Budget` and stops at its ceiling.

    ``spec`` is the spec it was loaded from (``openai:gpt-4o-mini``): the name runs record for it.
    """

    def __init__(
        self,
        inner: Model,
        price: Price | None = None,
        budget: Budget | None = None,
        counter: TokenCounter | None = None,
        spec: str | None = None,
    ) -> None:
        self.inner = inner
        self.spec = spec
        self.name: str = inner.name
        self.capabilities: Capabilities = inner.capabilities
        self.price = price
        self.budget = budget if budget is not None else Budget()
        self.count = counter or token_counter(inner)

    def __getattr__(self, name: str) -> Any:  # tokenizer, stats… of the wrapped backend
        if name == "inner":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def loglikelihood(self, requests: Sequence[Any]) -> Iterator[tuple[int, Response]]:
        return self._serve("loglikelihood", requests)

    def generate(self, requests: Sequence[Any]) -> Iterator[tuple[int, Response]]:
        return self._serve("generate", requests)

    def chat(self, requests: Sequence[Any]) -> Iterator[tuple[int, Response]]:
        return self._serve("chat", requests)

    def embed(self, requests: Sequence[Any]) -> Iterator[tuple[int, Response]]:
        """An embedder's calls (the queries of a RAG run), charged like a model's."""
        return self._serve("embed", requests)  # type: ignore[arg-type]

    def _serve(self, kind: RequestKind, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        start = 0
        while start < len(requests):
            chunk, estimates = self._affordable(requests, start)
            largest = max((e for e in estimates if e is not None), default=0.0)
            left = len(chunk)
            stream = dispatch(self.inner, kind, chunk)
            try:
                for local, response in stream:
                    fill_tokens(chunk[local], response, self.count)
                    cost = response_cost(self.price, response)
                    self.budget.charge(cost, response.latency_s, estimates[local])
                    left -= 1
                    yield start + local, response
                    if left and self._would_cross(largest):
                        raise BudgetExceededError(self.budget.spent, self.budget.ceiling or 0.0)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            start += len(chunk)

    def _would_cross(self, next_estimate: float) -> bool:
        """Spending has crossed the ceiling, or the next call (as now estimated) would."""
        ceiling = self.budget.ceiling
        return ceiling is not None and self.budget.spent + next_estimate * self.budget.scale() > ceiling

    def _affordable(self, requests: Sequence[Request], start: int) -> tuple[list[Request], list[float | None]]:
        """Requests from ``start`` to send next, and their estimated costs.

        Without a ceiling: all of them. With one, a chunk whose estimated cost (scaled by how far
        actual costs have run over estimates so far) fits in half of what is left, so estimates
        are corrected between chunks; a request that fits in what is left but not in half of it
        goes alone. Nothing fits: :class:`BudgetExceededError`.
        """
        if self.budget.ceiling is None:
            return list(requests[start:]), [None] * (len(requests) - start)
        left = self.budget.remaining()
        scale = self.budget.scale()
        seconds = self.budget.mean_latency()
        chunk: list[Request] = []
        estimates: list[float | None] = []
        reserved = 0.0
        for request in requests[start:]:
            estimate = estimated_cost(self.price, request, self.count, seconds)
            if estimate is None:  # priced by time, none measured yet: probe with a small chunk
                if len(chunk) >= _PROBE:
                    break
                cost = 0.0
            else:
                cost = estimate * scale
            if reserved + cost > left or (chunk and reserved + cost > left / 2):
                break
            chunk.append(request)
            estimates.append(estimate)
            reserved += cost
        if not chunk:
            raise BudgetExceededError(self.budget.spent, self.budget.ceiling)
        return chunk, estimates
