"""hyouka (評価): evaluate large language models, Japanese first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EvalResult", "Store", "__version__", "evaluate", "ladder", "load_model", "pairwise", "resume_run", "run"]

if TYPE_CHECKING:
    from hyouka.api import EvalResult, resume_run, run
    from hyouka.evaluation import evaluate, pairwise
    from hyouka.evaluation.ladder import ladder
    from hyouka.models.registry import load_model
    from hyouka.store.store import Store

_LAZY = {
    "run": "hyouka.api",
    "resume_run": "hyouka.api",
    "EvalResult": "hyouka.api",
    "load_model": "hyouka.models.registry",
    "Store": "hyouka.store.store",
    # -- judge evaluations (hyouka.evaluation) --
    "evaluate": "hyouka.evaluation",
    "pairwise": "hyouka.evaluation",
    # -- the prompting ladder (hyouka.evaluation.ladder) --
    "ladder": "hyouka.evaluation.ladder",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyouka' has no attribute {name!r}")
