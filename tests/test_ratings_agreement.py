"""Agreement statistics on small crafted sets, against hand computation (and scikit-learn's kappa)."""

from __future__ import annotations

import numpy as np
import pytest

from hyouka.ratings import agreement, cohen_kappa, krippendorff_alpha, label_agreement

# judge vs person on six items; item 4 is a tie for both (one spelled "bothbad")
JUDGE = ["a", "a", "b", "tie", "b", "a"]
PERSON = ["a", "b", "b", "bothbad", "a", "a"]


def test_label_agreement_with_and_without_ties_and_kappa() -> None:
    report = label_agreement(list(zip(JUDGE, PERSON, strict=True)), categories=["x", "x", "x", "y", "y", "y"])
    # with ties: items 1, 3, 4, 6 agree -> 4 / 6; without ties item 4 leaves: 3 of 5 agree
    assert (report.n, report.agree, report.exact) == (6, 4, pytest.approx(4 / 6))
    assert (report.n_without_ties, report.agree_without_ties) == (5, 3)
    assert report.exact_without_ties == pytest.approx(3 / 5)
    # kappa: observed 4/6; both sides have a 3, b 2, tie 1 -> chance (9 + 4 + 1) / 36; (24 - 14) / (36 - 14)
    assert report.kappa == pytest.approx(10 / 22)
    # Krippendorff's alpha (nominal), the two sides as coders: coincidences o_aa 4, o_ab = o_ba 2, o_bb 2,
    # o_tt 2 over n = 12 values (a 6, b 4, tie 2); D_o = 4 / 12, D_e = 2 (24 + 12 + 8) / 132; 1 - D_o / D_e
    assert report.alpha == pytest.approx(1 / 2)
    import krippendorff

    codes = {"a": 0, "b": 1, "tie": 2, "bothbad": 2}
    matrix = np.array([[codes[v] for v in JUDGE], [codes[v] for v in PERSON]], dtype=float)
    assert report.alpha == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    assert report.per_category["x"].exact == pytest.approx(2 / 3)
    assert report.per_category["y"].n_without_ties == 2 and report.per_category["y"].agree_without_ties == 1


def test_kappa_equals_scikit_learn() -> None:
    from sklearn.metrics import cohen_kappa_score

    person = ["tie" if p == "bothbad" else p for p in PERSON]
    assert cohen_kappa(JUDGE, person) == pytest.approx(cohen_kappa_score(JUDGE, person))
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement is certain
    assert label_agreement([]).exact is None


def test_krippendorff_alpha_hand_computed() -> None:
    # two raters, four items: [1, 1, 2, 2] and [1, 2, 2, 2]. Coincidences: o11 = 2, o12 = o21 = 1, o22 = 4;
    # n1 = 3, n2 = 5, n = 8; D_o = 2 / 8, D_e = 2 * 3 * 5 / (8 * 7); alpha = 1 - D_o / D_e = 8 / 15
    data = np.array([[1, 1, 2, 2], [1, 2, 2, 2]], dtype=float)
    assert krippendorff_alpha(data, "nominal") == pytest.approx(8 / 15)
    assert krippendorff_alpha(data, "interval") == pytest.approx(8 / 15)  # two values: same distances
    # a third rater who rated only item 2 (NaN elsewhere): item 2 holds {1, 2, 2}, six ordered pairs each
    # weighted 1 / (3 - 1): o12 = o21 = 1, o22 gains 1. Now o11 = 2, o12 = o21 = 1, o22 = 5; n = 9, n1 = 3, n2 = 6
    three = np.vstack([data, [np.nan, 2, np.nan, np.nan]])
    # D_o = 2 / 9; D_e = 2 * 3 * 6 / (9 * 8) = 0.5; alpha = 1 - (2 / 9) / 0.5 = 5 / 9
    assert krippendorff_alpha(three, "nominal") == pytest.approx(5 / 9)
    assert krippendorff_alpha(np.array([[3.0, 3.0], [3.0, 3.0]])) is None


def test_score_agreement_reports_kappa_alpha_and_spearman_per_category() -> None:
    people = {"q1": 5.0, "q2": 4.0, "q3": 2.0, "q4": 1.0, "q5": 3.0, "q6": None}
    judge = {"q1": 5.0, "q2": 5.0, "q3": 2.0, "q4": 2.0, "q5": 3.0, "q7": 4.0}
    report = agreement(people, judge, categories={"q1": "math", "q2": "math", "q3": "writing", "q4": "writing"})
    assert (report.n, report.n_only_a, report.n_only_b) == (5, 0, 1)
    assert report.exact == pytest.approx(3 / 5) and report.within_one == 1.0
    # ranks: people [5, 4, 2, 1, 3], judge [4.5, 4.5, 1.5, 1.5, 3]: d = [.5, -.5, .5, -.5, 0]
    from scipy.stats import spearmanr

    assert report.spearman == pytest.approx(spearmanr([5, 4, 2, 1, 3], [5, 5, 2, 2, 3]).statistic)
    # kappa on the scores as labels: observed 3/5; marginals people 5,4,3,2,1 once each, judge 5 x2, 2 x2, 3 x1
    # chance = (1*2 + 1*0 + 1*1 + 1*2 + 1*0) / 25 = 5 / 25; kappa = (15 - 5) / (25 - 5) = 0.5
    assert report.kappa == pytest.approx(0.5)
    assert report.alpha is not None and 0 < report.alpha < 1
    assert set(report.per_category) == {"math", "writing", "unknown"}
    assert report.per_category["math"].exact == pytest.approx(0.5)
