"""Put jobs in the queue: one spec, or a grid of them, deduplicated by content hash."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hyouka.jobs.spec import JobSpec, Placement, default_gpus
from hyouka.store.queue import JobQueue
from hyouka.store.store import Store


def submit(
    spec: JobSpec,
    placement: Placement | None = None,
    *,
    store: Store | str | None = None,
    force: bool = False,
    max_attempts: int = 3,
) -> tuple[dict[str, Any], bool]:
    """Queue ``spec`` and return its job and whether it is new: the same spec again is the same job
    (whatever its state), unless ``force``, which queues a new job to run it again."""
    placement = placement or Placement()
    gpus = placement.num_gpus if "num_gpus" in placement.model_fields_set else default_gpus(spec, placement.queue)
    queue = JobQueue(store if isinstance(store, Store) else Store(store))
    return queue.submit(spec.manifest(), spec.content_hash(), queue=placement.queue, priority=placement.priority,
                        num_gpus=gpus, num_cpus=placement.num_cpus, force=force, max_attempts=max_attempts)


def submit_all(
    specs: Sequence[tuple[JobSpec, Placement]], *, store: Store | str | None = None, force: bool = False,
) -> list[tuple[dict[str, Any], bool]]:
    """:func:`submit` each ``(spec, placement)`` into one store."""
    the_store = store if isinstance(store, Store) else Store(store)
    return [submit(spec, placement, store=the_store, force=force) for spec, placement in specs]
