"""Send requests to a model through the response cache, once each.

The executor is the one door to a model: benchmark requests and judge prompts
alike pass through it, so they share deduplication, caching and call counts.
It also keeps the answers an interrupted run has paid for: :meth:`Executor.close`
(called by the run's :class:`~hyouka.engine.recorder.RunRecorder` when the run stops
on Ctrl-C, SIGTERM or the budget) closes every stream still open, so the backend stops
sending, waits for the calls in flight and hands their answers back to be cached.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from hyouka.engine.cache import ResponseCache, decode_response
from hyouka.models.base import Model, Request, Response, dispatch, identity_digest, request_key, request_keys


@dataclass
class CallStats:
    """What an executor did: requests asked, answered from cache, sent to the model."""

    requested: int = 0
    cache_hits: int = 0
    model_calls: int = 0
    failures: int = 0


class Executor:
    """Deduplicate, look up the cache, dispatch the rest, cache what succeeds."""

    def __init__(self, model: Model, cache: ResponseCache | None = None) -> None:
        self.model = model
        self.cache = cache
        self.stats = CallStats()
        self._identity = identity_digest(model.identity())
        self._open: weakref.WeakSet[Iterator[tuple[int, Response]]] = weakref.WeakSet()

    def key(self, request: Request) -> str:
        return request_key(self._identity, request)

    def execute(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        """Yield ``(index, Response)`` for every request, cached answers first.

        Identical requests are sent once and their answer fanned out; the copies are marked
        ``cached`` (served without a call of their own), so accounting pays for the call once.
        Answers stream back as the backend produces them, in any order. The stream stays known
        to :meth:`close` until it ends.
        """
        stream = self._execute(requests)
        self._open.add(stream)
        return stream

    def close(self) -> None:
        """Close the streams of :meth:`execute` still open (a run that stops: Ctrl-C, SIGTERM, the budget).

        Each one closes its backend's stream, which sends nothing more and waits for the calls in
        flight; their answers, and those finished but not yet read, are cached (they were paid for).
        Streams being read in another thread are left to that thread.
        """
        for stream in list(self._open):
            try:
                stream.close()  # type: ignore[attr-defined]
            except ValueError:  # "generator already executing": another thread reads it and closes it
                continue
        self.flush()

    def _execute(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        self.stats.requested += len(requests)
        keys = request_keys(self._identity, requests)
        first: dict[str, int] = {}  # key -> position of its first request
        repeats: dict[str, list[int]] = defaultdict(list)  # key -> positions of identical later requests
        for index, key in enumerate(keys):
            if first.setdefault(key, index) != index:
                repeats[key].append(index)

        cached = self.cache.get_stored(first) if self.cache is not None else {}
        for key, index in first.items():  # in request order: a document's answers arrive together
            stored = cached.get(key)
            if stored is None:
                continue
            response = decode_response(stored)  # decoded one at a time: each dies with its sample
            response.cached = True
            again = repeats.get(key, ())
            self.stats.cache_hits += 1 + len(again)
            yield index, response
            for repeat in again:
                yield repeat, response

        by_kind: dict[str, list[str]] = defaultdict(list)
        for key, index in first.items():
            if key not in cached:
                by_kind[requests[index].kind].append(key)

        for kind, kind_keys in by_kind.items():
            batch = [requests[first[key]] for key in kind_keys]
            self.stats.model_calls += len(batch)
            stream = dispatch(self.model, kind, batch)  # type: ignore[arg-type]
            try:
                for local_index, response in stream:
                    key = kind_keys[local_index]
                    if response.ok:
                        if self.cache is not None:
                            self.cache.put(key, response)
                    else:
                        self.stats.failures += 1
                    yield first[key], response
                    again = repeats.get(key, ())
                    if again:
                        shared = replace(response, cached=True) if response.ok else response
                        for index in again:
                            yield index, shared
            finally:
                close = getattr(stream, "close", None)
                if callable(close):
                    close()  # a backend with calls in flight waits for them ...
                self._keep_abandoned()  # ... and their answers are cached: they were paid for

    def _keep_abandoned(self) -> None:
        """Cache the answers a backend got after its caller stopped reading (see ``OpenAIModel.take_abandoned``)."""
        take = getattr(self.model, "take_abandoned", None)
        if self.cache is None or not callable(take):
            return
        for request, response in take():
            if response.ok:
                self.cache.put(self.key(request), response)

    def flush(self) -> None:
        if self.cache is not None:
            self.cache.flush()
