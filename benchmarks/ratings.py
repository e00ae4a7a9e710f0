"""Bradley-Terry with bootstrap intervals: hyouka against FastChat's approach, in one run.

100,000 synthetic votes (20 % ties) among 30 models with known strengths, 1,000 bootstrap rounds.

* hyouka: votes aggregated once into per-pair counts; Newton's method on the aggregated likelihood,
  every round at once (a round is a multinomial resample of the counts), warm-started from the fit.
* FastChat (its ``elo_analysis.py`` before ``rating_systems.py``, re-implemented here): each round
  resamples the battles with ``DataFrame.sample(frac=1, replace=True)``, pivots them into win/tie
  tables and fits scikit-learn's unpenalised ``LogisticRegression`` with those tables as sample weights.

Both give ratings on the same scale (400 per factor of 10 in odds, averaging 1000). Printed: both
walls, the largest difference between the two fits on all votes, and between the two 95 % bounds
(the rounds are different random resamples, so the bounds differ by Monte Carlo noise). The last line
is ``speedup=<FastChat wall / hyouka wall> max_rating_diff=<x> max_ci_diff=<y>`` (goal: speedup
at least 5, rating difference at most 0.5)::

    python benchmarks/ratings.py [--votes 100000] [--models 30] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from hyouka.ratings import BradleyTerry


def synthetic_battles(n_votes: int, n_models: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strengths = rng.normal(1000, 150, n_models)
    names = np.array([f"model-{k:02d}" for k in range(n_models)])
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
    tie = rng.random(n_votes) < 0.2
    winner = np.where(tie, "tie", np.where(rng.random(n_votes) < p, "model_a", "model_b"))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def _unpenalised() -> dict:
    import sklearn

    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    return {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}


def fastchat_fit(battles: pd.DataFrame, options: dict) -> pd.Series:
    """FastChat's weighted logistic regression: a win counts 2 (one per order of the pair), a tie 1 each way."""
    from sklearn.linear_model import LogisticRegression

    def table(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.crosstab(rows["model_a"], rows["model_b"])

    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    full = pd.DataFrame(0.0, index=models, columns=models)
    a_win = table(battles[battles["winner"] == "model_a"]).reindex_like(full).fillna(0)
    b_win = table(battles[battles["winner"] == "model_b"]).reindex_like(full).fillna(0)
    tie = table(battles[battles["winner"].isin(["tie", "tie (bothbad)"])]).reindex_like(full).fillna(0)
    wins = 2 * a_win + 2 * b_win.T + tie + tie.T  # wins[i, j]: weight of "i beat j"
    k = len(models)
    rows_x, ys, weights = [], [], []
    log_base = math.log(10)
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            x = np.zeros(k)
            x[i], x[j] = log_base, -log_base
            rows_x += [x, x]
            ys += [1.0, 0.0]
            weights += [wins.iat[i, j], wins.iat[j, i]]
    lr = LogisticRegression(fit_intercept=False, tol=1e-6, **options)
    lr.fit(np.array(rows_x), np.array(ys), sample_weight=np.array(weights))
    return pd.Series(400 * lr.coef_[0] + 1000, index=models)


def fastchat(battles: pd.DataFrame, rounds: int) -> tuple[pd.Series, pd.DataFrame]:
    options = _unpenalised()
    point = fastchat_fit(battles, options)
    boot = pd.DataFrame([fastchat_fit(battles.sample(frac=1.0, replace=True, random_state=i), options)
                         for i in range(rounds)])
    return point, boot


def hyouka_bt(battles: pd.DataFrame, rounds: int) -> BradleyTerry:
    from hyouka.ratings import bradley_terry

    votes = list(zip(battles["model_a"], battles["model_b"], battles["winner"], strict=True))
    return bradley_terry(votes, rounds=rounds, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    battles = synthetic_battles(args.votes, args.models)

    start = time.perf_counter()
    ours = hyouka_bt(battles, args.rounds)
    ours_wall = time.perf_counter() - start
    start = time.perf_counter()
    peer_point, peer_boot = fastchat(battles, args.rounds)
    peer_wall = time.perf_counter() - start

    peer_point = peer_point[ours.models].to_numpy()
    peer_low = peer_boot[ours.models].quantile(0.025).to_numpy()
    peer_high = peer_boot[ours.models].quantile(0.975).to_numpy()
    rating_diff = float(np.max(np.abs(ours.ratings - peer_point)))
    ci_diff = float(max(np.max(np.abs(ours.ci_low - peer_low)), np.max(np.abs(ours.ci_high - peer_high))))
    width = float(np.mean(ours.ci_high - ours.ci_low))
    print(f"{args.votes} votes, {args.models} models, {args.rounds} bootstrap rounds")
    print(f"hyouka   wall {ours_wall:8.2f} s  (unconverged rounds: {ours.n_unconverged})")
    print(f"FastChat wall {peer_wall:8.2f} s  (scikit-learn LogisticRegression per round)")
    print(f"mean 95% interval width {width:.2f} rating points")
    print(f"speedup={peer_wall / ours_wall:.1f} max_rating_diff={rating_diff:.4f} max_ci_diff={ci_diff:.3f}")


if __name__ == "__main__":
    main()
