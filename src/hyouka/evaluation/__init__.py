"""Evaluate a model's answers, or existing predictions, on one's own data: ``hyouka.evaluate``, ``hyouka.pairwise``."""

from hyouka.evaluation.core import EvaluationResult, evaluate
from hyouka.evaluation.pairs import PairwiseResult, pairwise

__all__ = ["EvaluationResult", "PairwiseResult", "evaluate", "pairwise"]
