"""Which model a stored run evaluates: its own, or for a judge run the one whose answers were judged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SUBJECT_KEYS", "subject_model"]

SUBJECT_KEYS = ("subject_model", "target_model", "candidate_model", "model_under_test", "evaluated_model")


def subject_model(run: Mapping[str, Any]) -> str:
    """The model a run evaluates: the run's model, or for a judge run the model whose answers were judged."""
    if (run.get("kind") or "benchmark") != "benchmark":
        config = run.get("config") or {}
        for key in SUBJECT_KEYS:
            if isinstance(config.get(key), str) and config[key]:
                return config[key]
    return run["model"]
