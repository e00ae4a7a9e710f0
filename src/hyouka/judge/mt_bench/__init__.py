"""Japanese MT-Bench: 80 two-turn questions in 8 categories, graded 1-10 by a judge, or compared pairwise."""

from hyouka.judge.mt_bench.data import CATEGORIES, MTBenchDataError, load_judgments, load_questions, mt_bench_dir

__all__ = ["CATEGORIES", "MTBenchDataError", "load_judgments", "load_questions", "mt_bench_dir"]
