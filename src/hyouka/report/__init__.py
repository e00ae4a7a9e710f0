"""Leaderboards, charts, reports, comparisons and exports, all read from the results store.

- ``leaderboard``: models x tasks from completed runs, suites as data (weights, lower-is-better),
  the weighted average and its interval; ``tables`` renders it (terminal, Markdown, CSV, JSON, HTML);
- ``views`` / ``summary``: runs with their samples and accounting; each row's cost, judge cost apart,
  tokens and latency percentiles;
- ``pareto``: the frontier of cheap-and-good points; ``charts``: metric bars, latency, quality
  against cost and latency, judge scores by category (matplotlib, ``hyouka[report]``);
- ``build`` / ``html``: one self-contained HTML report; ``examples``: the per-row table;
- ``compare``: two runs paired by document, differences with bootstrap intervals;
- ``export_mlflow`` / ``export_wandb``: the same data logged to experiment trackers.
"""
