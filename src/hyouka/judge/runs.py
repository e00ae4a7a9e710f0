"""Judge and pairwise runs in the results store, recorded as they complete and resumable.

Their life in the store (found again by the hash of their configuration or by id, owned while
they execute, samples written in small groups after the response cache, a killed run keeping
what it finished) is :class:`hyouka.engine.recorder.RunRecorder`'s, the one every run shares.

Accounting, as for benchmark runs: the calls recorded in a sample's ``responses`` are the run's
``model``'s (the judge's, in a judge run), so each sample gets their ``cost_usd`` at that model's
price, and the finished run ``stats["accounting"]`` (:func:`hyouka.engine.accounting.run_accounting`).
The evaluated model's answers (``details["answer"]``) are not in either; reports price them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from hyouka.engine.executor import Executor
from hyouka.engine.recorder import RunRecorder
from hyouka.engine.records import config_hash, package_versions

__all__ = ["JudgeRunResult", "RunRecorder", "call_stats", "config_hash", "package_versions", "sum_optional"]


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
