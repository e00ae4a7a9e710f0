"""Judge and pairwise runs in the results store, recorded as they complete and resumable.

Mirrors :mod:`hyouka.engine.runner`: a run is found again by the hash of its configuration
(or by id), samples are written in small groups as they finish (the response cache is
flushed first, so every recorded sample's calls are cached), and a killed run keeps what it
finished; running it again calls nothing for those samples.

Accounting, as for benchmark runs: the calls recorded in a sample's ``responses`` are the run's
``model``'s (the judge's, in a judge run), so each sample gets their ``cost_usd`` at that model's
price, and the finished run ``stats["accounting"]`` (:func:`hyouka.engine.accounting.run_accounting`).
The evaluated model's answers (``details["answer"]``) are not in either; reports price them apart.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from hyouka.engine.accounting import price_for, run_accounting, sample_cost
from hyouka.engine.executor import Executor
from hyouka.pricing.table import PriceTable, load_prices
from hyouka.store.store import Store

__all__ = ["JudgeRunResult", "RunRecorder", "call_stats", "config_hash", "sum_optional"]

_FLUSH_EVERY_S = 1.0
_FLUSH_EVERY_N = 200


def config_hash(config: dict[str, Any]) -> str:
    """The hash a run is found again by (same recipe as benchmark runs)."""
    blob = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def package_versions() -> dict[str, str]:
    """Versions that can change a judge run's result."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("hyouka", "openai", "fugashi", "unidic-lite", "numpy", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class JudgeRunResult:
    """What one judge or pairwise run produced; ``model`` is the model evaluated, ``judge`` the judge."""

    run_id: str
    kind: str
    task: str
    mode: str
    model: str
    judge: str
    aggregates: dict[str, dict[str, Any]]
    n_samples: int
    status: str = "completed"
    resumed: bool = False
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        agg = self.aggregates.get(name)
        return None if agg is None else agg["value"]

    @property
    def model_calls(self) -> int:
        return sum(c.get("model_calls", 0) for c in self.calls.values())

    @property
    def cache_hits(self) -> int:
        return sum(c.get("cache_hits", 0) for c in self.calls.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def call_stats(**executors: Executor | None) -> dict[str, dict[str, int]]:
    """Each executor's call counts by role (``model``, ``judge``…)."""
    return {role: asdict(e.stats) for role, e in executors.items() if e is not None}


def sum_optional(values: Iterable[float | int | None]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


class RunRecorder:
    """Creates or resumes one run and writes its sample records in groups."""

    def __init__(
        self,
        store: Store,
        *,
        kind: str,
        model: str,
        task: str,
        mode: str,
        config: dict[str, Any],
        n_samples: int,
        executors: Sequence[Executor] = (),
        resume: str | None = None,
        task_version: str = "",
        task_hash: str = "",
        model_identity: dict[str, Any] | None = None,
        prices: PriceTable | str | Path | None = None,
    ) -> None:
        self.store = store
        # the price of the calls this run records (the judge's, in a judge run); ``prices``: a table or
        # a YAML file consulted before the default table
        self.price = price_for(load_prices(prices), model, model_identity or {})
        self.executors = list(executors)
        self.config = config
        digest = config_hash(config)
        existing = store.get_run(resume) if resume else store.find_run(digest, unfinished=True)
        self.resumed = existing is not None
        self._previous_s = float(existing.get("duration_s") or 0.0) if existing else 0.0
        if existing is not None:
            self.run_id: str = existing["id"]
            store.update_run(self.run_id, status="running", error=None)
        else:
            self.run_id = store.create_run(
                kind=kind,
                model=model,
                task=task,
                task_version=task_version,
                task_hash=task_hash,
                mode=mode,
                config=config,
                config_hash=digest,
                model_identity=model_identity or {},
                versions=package_versions(),
                n_samples=n_samples,
            )
        self.done: set[int] = store.finished_indices(self.run_id)
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._started = time.perf_counter()

    def add(self, record: dict[str, Any]) -> None:
        """Queue one finished sample (priced: ``cost_usd``); written within about a second."""
        if "cost_usd" not in record:
            record["cost_usd"] = sample_cost(self.price.price if self.price else None, record.get("responses") or [])
        self._buffer.append(record)
        if len(self._buffer) >= _FLUSH_EVERY_N or time.monotonic() - self._last_flush > _FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        for executor in self.executors:
            executor.flush()  # cache first: a recorded sample's answers are always cached
        self.store.write_samples(self.run_id, self._buffer, replace=self.resumed)
        self._buffer.clear()
        self._last_flush = time.monotonic()

    def samples(self) -> list[dict[str, Any]]:
        self.flush()
        return self.store.samples(self.run_id)

    @property
    def duration_s(self) -> float:
        return self._previous_s + time.perf_counter() - self._started

    def finish(self, aggregates: Sequence[dict[str, Any]], stats: dict[str, Any]) -> None:
        """Write the aggregates and mark the run completed, with ``stats["accounting"]`` of all its samples."""
        self.flush()
        duration = self.duration_s
        stats = {**stats, "accounting": run_accounting(self.store.samples(self.run_id), self.price,
                                                       duration_s=duration)}
        self.store.set_aggregates(self.run_id, aggregates)
        self.store.finish_run(self.run_id, duration_s=duration, stats=stats)

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        self.flush()
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "BudgetExceededError" \
            else "failed"
        self.store.update_run(self.run_id, status=status, error=f"{type(exc).__name__}: {exc}",
                              duration_s=self.duration_s)
