"""Data-parallel replicas of one model: ``hyouka run --shards N [--ray …]``.

:class:`ReplicaModel` is a backend made of N copies of the model a spec names: Ray actors spread
over a cluster (each asking for the GPUs a local model needs, or none for an endpoint), or, without
``--ray``, copies in this process. The runner, the response cache, the run's ownership and its
records stay where the command runs — only the model's calls go out — so a sharded run writes the
same records to the same store as a run on one copy; it just has N copies answering. A task's
requests go out in chunks, each replica holding at most two at a time (one served, one waiting),
and answers stream back to the runner as chunks finish.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from hyouka.models.base import Capabilities, Request, RequestKind, Response, dispatch
from hyouka.models.registry import check_ready, load_model, parse_spec

LOCAL_BACKENDS = ("hf", "vllm")
_IN_FLIGHT = 2  # chunks a replica holds at once


def _parallelism(model: Any) -> int:
    """Requests a backend works on at once: an endpoint's ``concurrency``, a local model's batch size."""
    for name in ("concurrency", "batch_size"):
        value = getattr(model, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1


class _Replica:
    """One copy of the model; on Ray this class is the actor."""

    def __init__(self, spec: str, options: dict[str, Any]) -> None:
        self.model = load_model(spec, **options)

    def describe(self) -> tuple[str, Capabilities, dict[str, Any], int]:
        """Name, capabilities, identity and requests served at once, once the copy is ready to answer:
        weights loaded (``load()`` of hf:/vllm:), the client made (``client`` of openai:), so a run's time
        is its calls'."""
        check_ready(self.model)
        load = getattr(self.model, "load", None)
        if callable(load):
            load()
        getattr(self.model, "client", None)
        return self.model.name, self.model.capabilities, self.model.identity(), _parallelism(self.model)

    def serve(self, kind: RequestKind, requests: Sequence[Request]) -> list[tuple[int, Response]]:
        return list(dispatch(self.model, kind, requests))


class _LocalPool:
    """Replicas in this process, one thread each."""

    def __init__(self, spec: str, options: dict[str, Any], n: int) -> None:
        self.replicas = [_Replica(spec, options) for _ in range(n)]
        for replica in self.replicas:
            replica.describe()
        self._threads = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hyouka-replica-{i}")
                         for i in range(n)]

    def describe(self) -> tuple[str, Capabilities, dict[str, Any], int]:
        return self.replicas[0].describe()

    def submit(self, i: int, kind: RequestKind, requests: Sequence[Request]) -> Future:
        return self._threads[i].submit(self.replicas[i].serve, kind, requests)

    def wait_any(self, tickets: Sequence[Any]) -> list[Any]:
        done, _ = wait_futures(tickets, return_when=FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def result(ticket: Future) -> list[tuple[int, Response]]:
        return ticket.result()


class _RayPool:
    """Replicas as Ray actors with the resources each copy needs."""

    def __init__(self, ray: Any, spec: str, options: dict[str, Any], n: int, num_gpus: float, num_cpus: float) -> None:
        self._ray = ray
        actor = ray.remote(_Replica).options(num_gpus=num_gpus, num_cpus=num_cpus, max_restarts=0)
        self.replicas = [actor.remote(spec, options) for _ in range(n)]
        ray.get([r.describe.remote() for r in self.replicas])  # every copy loaded (and ready) before the run

    def describe(self) -> tuple[str, Capabilities, dict[str, Any], int]:
        return self._ray.get(self.replicas[0].describe.remote())

    def submit(self, i: int, kind: RequestKind, requests: Sequence[Request]) -> Any:
        return self.replicas[i].serve.remote(kind, list(requests))

    def wait_any(self, tickets: Sequence[Any]) -> list[Any]:
        ready, _ = self._ray.wait(list(tickets), num_returns=1)
        return ready

    def result(self, ticket: Any) -> list[tuple[int, Response]]:
        return self._ray.get(ticket)

    def close(self) -> None:
        for replica in self.replicas:
            self._ray.kill(replica)


class ReplicaModel:
    """A backend whose calls are served by ``n`` replicas of one model spec (see the module's doc)."""

    def __init__(self, pool: Any, n: int) -> None:
        self.pool = pool
        self.n = n
        self.name, self.capabilities, self._identity, self.parallelism = pool.describe()

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)  # the model's own: cache keys and records are those of one copy

    def loglikelihood(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        return self._serve("loglikelihood", requests)

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        return self._serve("generate", requests)

    def chat(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        return self._serve("chat", requests)

    def _serve(self, kind: RequestKind, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        # about four chunks per replica, each a whole number of the replica's parallel calls
        per = self.parallelism
        size = per * max(1, min(64 // per or 1, math.ceil(len(requests) / (self.n * 4 * per))))
        chunks = deque((start, requests[start:start + size]) for start in range(0, len(requests), size))
        load = [0] * self.n
        flying: dict[Any, tuple[int, int]] = {}  # ticket -> (replica, first request's position)
        while chunks or flying:
            for i in sorted(range(self.n), key=load.__getitem__):
                while chunks and load[i] < _IN_FLIGHT:
                    start, chunk = chunks.popleft()
                    flying[self.pool.submit(i, kind, chunk)] = (i, start)
                    load[i] += 1
            for ticket in self.pool.wait_any(list(flying)):
                i, start = flying.pop(ticket)
                load[i] -= 1
                for local, response in self.pool.result(ticket):
                    yield start + local, response

    def close(self) -> None:
        close = getattr(self.pool, "close", None)
        if callable(close):
            close()


def build_replicas(
    spec: str, options: dict[str, Any], *, shards: int | None = None, ray: str | None = None,
    num_gpus: float | None = None,
) -> ReplicaModel:
    """``shards`` replicas of ``spec`` with backend ``options``: Ray actors when ``ray`` (an address or
    ``auto``) is given, else copies in this process.

    On Ray, a local-weights replica (``hf:``, ``vllm:``) asks for ``num_gpus`` (default: its
    tensor-parallel size where the cluster has GPUs, else none) and one CPU; an endpoint replica asks
    for none (its work is waiting on the endpoint). ``shards`` defaults to as many replicas as the
    cluster has room for: its GPUs for a local model, its CPUs for an endpoint.
    """
    backend, _ = parse_spec(spec)
    local = backend in LOCAL_BACKENDS
    options = {k: v for k, v in options.items() if v is not None}
    if shards is not None and shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    if ray is None:
        n = shards or 1
        return ReplicaModel(_LocalPool(spec, options, n), n)
    from hyouka.jobs.ray_cluster import cluster_capacity, connect

    ray_module = connect(ray)
    capacity = cluster_capacity(ray_module)
    if num_gpus is None:
        num_gpus = float(options.get("tensor_parallel_size") or 1) if local and capacity.gpus >= 1 else 0.0
    num_cpus = 1.0 if local else 0.0
    if shards is None:
        shards = max(1, int(capacity.gpus // num_gpus) if num_gpus else int(capacity.cpus))
    return ReplicaModel(_RayPool(ray_module, spec, options, shards, num_gpus, num_cpus), shards)

