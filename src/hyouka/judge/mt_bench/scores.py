"""MT-Bench scores from a run's records: overall, per turn and per category, over the turns judged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hyouka.judge.mt_bench.data import CATEGORIES
from hyouka.judge.summary import ScoreSummary, summarize_scores

__all__ = ["single_scores", "turns_note"]


def _score(sample: dict[str, Any]) -> float | None:
    value = (sample.get("metrics") or {}).get("score")
    return None if value is None else float(value)


def turns_note(samples: Sequence[dict[str, Any]]) -> str:
    """Which turns were judged, e.g. ``judged 80 of 160 turns (turn 1: 80/80, turn 2: 0/80)``."""
    by_turn: dict[int, list[bool]] = defaultdict(list)
    for s in samples:
        by_turn[int(s["doc"]["turn"])].append(_score(s) is not None)
    judged = sum(sum(v) for v in by_turn.values())
    parts = ", ".join(f"turn {t}: {sum(v)}/{len(v)}" for t, v in sorted(by_turn.items()))
    return f"judged {judged} of {len(samples)} turns ({parts})"


def single_scores(samples: Sequence[dict[str, Any]], *, seed: int = 0) -> list[ScoreSummary]:
    """``score`` (all judged turns), ``turn_1``/``turn_2`` and ``category/<name>`` summaries."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in samples:
        groups["score"].append(s)
        groups[f"turn_{int(s['doc']['turn'])}"].append(s)
        groups[f"category/{s['doc']['category']}"].append(s)
    order = ["score", *sorted(k for k in groups if k.startswith("turn_"))]
    order += [f"category/{c}" for c in CATEGORIES if f"category/{c}" in groups]
    order += sorted(k for k in groups if k not in order)
    out = []
    for name in order:
        rows = groups[name]
        summary = summarize_scores(name, [_score(s) for s in rows], [s["status"] for s in rows], seed=seed)
        if name == "score":
            summary.note = f"{turns_note(rows)}; {summary.note}"
        out.append(summary)
    return out
