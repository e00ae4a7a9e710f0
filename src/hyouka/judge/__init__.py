"""LLM-as-a-judge: rubrics as data, tolerant parsing, graded metrics, pairwise with swap, MT-Bench, agreement."""
