"""Elo, Bradley-Terry and their intervals, checked against hand computation and independent fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from hyouka.ratings import (
    RatingsUndefinedError,
    bootstrap_elo,
    bradley_terry,
    fit_bradley_terry,
    online_elo,
    pair_counts,
    predicted_win_rates,
    rank_by_interval,
    win_rate_matrix,
)


def synthetic_votes(strengths: dict[str, float], n: int, seed: int, tie_rate: float = 0.15) -> list[tuple]:
    """Votes drawn from the Bradley-Terry model, and ties at random at ``tie_rate`` (they pull ratings together)."""
    rng = np.random.default_rng(seed)
    names = list(strengths)
    r = np.array([strengths[m] for m in names])
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / 400))
    u, t = rng.random(n), rng.random(n) < tie_rate
    winners = np.where(t, "tie", np.where(u < p, "a", "b"))
    return [(names[i], names[j], w) for i, j, w in zip(a, b, winners, strict=True)]


STRENGTHS = {"alpha": 1200.0, "beta": 1100.0, "gamma": 1000.0, "delta": 950.0, "eps": 800.0}


def _unpenalised() -> dict:
    """No penalty: ``C=inf`` from scikit-learn 1.8 on (``penalty=None`` is deprecated there), else ``penalty=None``."""
    import sklearn

    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    return {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}


UNPENALISED = _unpenalised()


def sklearn_fastchat(votes: list[tuple]) -> dict[str, float]:
    """FastChat's compute_mle_elo recipe: battles twice, a tie as one win each way, unpenalised logistic regression."""
    from sklearn.linear_model import LogisticRegression

    models = sorted({m for v in votes for m in v[:2]})
    index = {m: i for i, m in enumerate(models)}
    doubled = votes + votes
    x = np.zeros((len(doubled), len(models)))
    rows = np.arange(len(doubled))
    x[rows, [index[v[0]] for v in doubled]] = math.log(10)
    x[rows, [index[v[1]] for v in doubled]] = -math.log(10)
    y = np.array([1.0 if v[2] == "a" else 0.0 for v in doubled])
    tie = np.array([v[2] == "tie" for v in doubled])
    tie[len(votes):] = False
    y[tie] = 1.0
    lr = LogisticRegression(fit_intercept=False, tol=1e-10, max_iter=10_000, **UNPENALISED).fit(x, y)
    ratings = 400 * lr.coef_[0]
    ratings += 1000 - ratings.mean()
    return dict(zip(models, ratings, strict=True))


def scipy_per_vote(votes: list[tuple]) -> dict[str, float]:
    """Maximum likelihood on the votes one by one (not aggregated), by scipy's BFGS."""
    models = sorted({m for v in votes for m in v[:2]})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[v[0]] for v in votes])
    b = np.array([index[v[1]] for v in votes])
    s = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[v[2]] for v in votes])

    def nll(theta: np.ndarray) -> float:
        d = math.log(10) * (theta[a] - theta[b])
        return float(np.sum(s * np.logaddexp(0, -d) + (1 - s) * np.logaddexp(0, d)))

    theta = minimize(nll, np.zeros(len(models)), method="BFGS", options={"gtol": 1e-8}).x
    ratings = 1000 + 400 * (theta - theta.mean())
    return dict(zip(models, ratings, strict=True))


def test_bradley_terry_equals_fastchat_logistic_regression_and_recovers_the_order() -> None:
    votes = synthetic_votes(STRENGTHS, 4000, seed=3)
    ours = fit_bradley_terry(votes)
    reference = sklearn_fastchat(votes)
    assert max(abs(ours[m] - reference[m]) for m in STRENGTHS) < 0.1
    assert sorted(ours, key=ours.get, reverse=True) == list(STRENGTHS)


def test_bradley_terry_equals_a_per_vote_scipy_fit() -> None:
    votes = synthetic_votes(STRENGTHS, 3000, seed=11, tie_rate=0.3)
    ours, reference = fit_bradley_terry(votes), scipy_per_vote(votes)
    assert max(abs(ours[m] - reference[m]) for m in STRENGTHS) < 0.1
    result = bradley_terry(votes, rounds=0)
    assert dict(zip(result.models, result.ratings, strict=True)) == pytest.approx(ours)


def test_anchor_pins_one_model_and_keeps_the_differences() -> None:
    votes = synthetic_votes(STRENGTHS, 2000, seed=5)
    free = fit_bradley_terry(votes)
    anchored = fit_bradley_terry(votes, anchor=("gamma", 1114.0))
    assert anchored["gamma"] == pytest.approx(1114.0)
    assert anchored["alpha"] - anchored["eps"] == pytest.approx(free["alpha"] - free["eps"])
    boot = bradley_terry(votes, rounds=50, anchor=("gamma", 1114.0), keep_rounds=True)
    assert boot.bootstrap is not None and np.allclose(boot.bootstrap[:, boot.models.index("gamma")], 1114.0)
    with pytest.raises(ValueError, match="anchor model 'zeta'"):
        fit_bradley_terry(votes, anchor=("zeta", 1000.0))


def test_intervals_cover_the_true_strengths_at_about_the_nominal_rate() -> None:
    strengths = {"a": 1150.0, "b": 1050.0, "c": 1000.0, "d": 900.0}
    truth = np.array(list(strengths.values()))
    truth = truth - truth.mean() + 1000
    covered = total = 0
    for study in range(80):
        votes = synthetic_votes(strengths, 400, seed=1000 + study, tie_rate=0.0)  # ties at random would shrink
        result = bradley_terry(votes, rounds=300, seed=study)
        order = [result.models.index(m) for m in strengths]
        covered += int(np.sum((result.ci_low[order] <= truth) & (truth <= result.ci_high[order])))
        total += len(strengths)
    assert 0.88 <= covered / total <= 0.99, covered / total


def test_bootstrap_is_fixed_by_its_seed_and_ranks_by_interval() -> None:
    votes = synthetic_votes(STRENGTHS, 1500, seed=8)
    one, two = bradley_terry(votes, rounds=200, seed=4), bradley_terry(votes, rounds=200, seed=4)
    other = bradley_terry(votes, rounds=200, seed=5)
    assert np.array_equal(one.ci_low, two.ci_low) and not np.array_equal(one.ci_low, other.ci_low)
    assert np.array_equal(one.rank, rank_by_interval(one.ci_low, one.ci_high))
    rows = one.rows()
    assert rows[0]["model"] == "alpha" and rows[0]["rank"] == 1
    assert sum(r["n_votes"] for r in rows) == 2 * 1500


def test_rank_by_interval_counts_the_models_wholly_above() -> None:
    low = np.array([1100.0, 1080.0, 1000.0, 900.0])
    high = np.array([1200.0, 1150.0, 1090.0, 1010.0])
    # model 3 (900-1010): models 0 and 1 lie wholly above (1100 > 1010, 1080 > 1010), model 2 overlaps
    assert rank_by_interval(low, high).tolist() == [1, 1, 2, 3]


def test_ratings_that_do_not_exist_are_an_error_naming_the_groups() -> None:
    votes = [("x", "y", "a"), ("x", "y", "a"), ("y", "z", "tie"), ("z", "y", "b")]
    with pytest.raises(RatingsUndefinedError, match=r"x \| y, z|y, z \| x"):
        fit_bradley_terry(votes)
    with pytest.raises(ValueError, match="vote 1: model 'x' against itself"):
        pair_counts([("x", "x", "a")])
    with pytest.raises(ValueError, match="winner 'left-ish'"):
        pair_counts([("x", "y", "left-ish")])


def test_online_elo_matches_a_hand_computed_sequence() -> None:
    votes = [("A", "B", "a"), ("B", "C", "tie"), ("C", "A", "b")]
    ratings = online_elo(votes, k=32)
    # 1) A beats B, both at 1000: E_A = 0.5, A = 1000 + 32 * 0.5 = 1016, B = 984
    # 2) B (984) ties C (1000): E_B = 1 / (1 + 10 ** (16 / 400)) = 1 / 2.0964782 = 0.4769906
    #    B += 32 * (0.5 - 0.4769906) = 0.7363 -> B = 984.73630, C = 999.26370
    # 3) C (999.26370) loses to A (1016): E_C = 1 / (1 + 10 ** (16.73630 / 400)) = 1 / 2.1011346 = 0.4759331
    #    C -= 32 * 0.4759331 = 15.22986 -> C = 984.03384, A = 1031.22986
    assert ratings == pytest.approx({"A": 1031.22986, "B": 984.73630, "C": 984.03384}, abs=2e-4)
    # K = 4: A = 1002, B = 998; B += 4 * (0.5 - 1 / (1 + 10 ** (2 / 400))) = 0.01151 -> C = 999.98849;
    # A += 4 / (1 + 10 ** (2.01151 / 400)) = 1.98842 -> 1003.98842
    assert online_elo(votes, k=4)["A"] == pytest.approx(1003.98842, abs=2e-4)
    with pytest.raises(ValueError, match="K must be positive"):
        online_elo(votes, k=0)


def test_bootstrap_elo_rounds_are_seeded_and_centred_on_the_ratings() -> None:
    votes = synthetic_votes(STRENGTHS, 800, seed=2)
    models, rounds = bootstrap_elo(votes, rounds=64, seed=1)
    again = bootstrap_elo(votes, rounds=64, seed=1)[1]
    assert rounds.shape == (64, 5) and np.array_equal(rounds, again)
    assert np.allclose(rounds.mean(axis=1), 1000.0)  # every update moves two ratings by opposite amounts
    assert models[int(np.argmax(np.median(rounds, axis=0)))] == "alpha"


def test_win_rate_matrix_counts_ties_as_half() -> None:
    votes = [("p", "q", "a"), ("q", "p", "a"), ("p", "q", "tie"), ("p", "q", "bothbad"), ("p", "r", "b")]
    models, rates, n = win_rate_matrix(votes)
    assert models == ["p", "q", "r"]
    assert rates[0, 1] == pytest.approx((1 + 0.5 + 0.5) / 4) and rates[1, 0] == pytest.approx(2 / 4)
    assert rates[0, 2] == 0.0 and rates[2, 0] == 1.0 and math.isnan(rates[1, 2])
    assert n[0, 1] == 4 and n[1, 2] == 0
    predicted = predicted_win_rates({"p": 1100.0, "q": 1000.0})
    assert predicted[0, 1] == pytest.approx(1 / (1 + 10 ** (-100 / 400)))


def test_rounds_with_an_unbounded_rating_leave_the_other_intervals_alone() -> None:
    # D has three votes against A: a resample often gives it all wins (or all losses), an unbounded rating
    votes = ([("A", "B", "a")] * 30 + [("A", "B", "b")] * 20 + [("B", "C", "a")] * 25 + [("B", "C", "b")] * 25
             + [("D", "A", "a")] * 2 + [("D", "A", "b")])
    result = bradley_terry(votes, rounds=400, seed=0)
    # D's resampled votes are about Poisson(3); all wins or all losses (one vote or more) in about 45 % of rounds
    assert 0.3 < result.n_unconverged / 400 < 0.6
    rows = {r["model"]: r for r in result.rows()}
    for model in "ABC":
        assert rows[model]["ci_high"] - rows[model]["ci_low"] < 300, rows[model]
    assert rows["D"]["ci_high"] - rows["D"]["ci_low"] > 1000  # the data cannot bound D
    assert np.isfinite(result.ci_low).all() and np.isfinite(result.ci_high).all()
