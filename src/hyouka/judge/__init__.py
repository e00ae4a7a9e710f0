"""LLM-as-a-judge: rubrics as data, tolerant parsing, graded metrics, pairwise with swap, MT-Bench, agreement.

Judge prompts are requests like any other: they go through the engine's executor (cache,
deduplication, the backend's concurrency and retries, call counts).
"""

from hyouka.judge.agreement import Agreement, agreement, compare_judges
from hyouka.judge.grading import JudgeCall, Judgment, run_calls
from hyouka.judge.metrics import (
    BUILTIN_JUDGE_METRICS,
    JudgeMetric,
    answer_correctness,
    answer_relevance,
    answer_similarity,
    faithfulness,
    judge_metric,
    relevance,
)
from hyouka.judge.pairwise import PairOutcome, combine, win_rates
from hyouka.judge.parse import parse_score, parse_verdict
from hyouka.judge.rubric import Rubric, RubricError, builtin_rubric_names, load_rubric

__all__ = [
    "BUILTIN_JUDGE_METRICS",
    "Agreement",
    "JudgeCall",
    "JudgeMetric",
    "Judgment",
    "PairOutcome",
    "Rubric",
    "RubricError",
    "agreement",
    "answer_correctness",
    "answer_relevance",
    "answer_similarity",
    "builtin_rubric_names",
    "combine",
    "compare_judges",
    "faithfulness",
    "judge_metric",
    "load_rubric",
    "parse_score",
    "parse_verdict",
    "relevance",
    "run_calls",
    "win_rates",
]
