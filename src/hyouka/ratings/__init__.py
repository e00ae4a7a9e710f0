"""Ratings and agreement: online Elo, Bradley-Terry with ties and bootstrap intervals, win rates,
agreement between raters and judges. Knows about nothing above it (votes are plain tuples)."""

from hyouka.ratings.agreement import (
    Agreement,
    LabelAgreement,
    agreement,
    cohen_kappa,
    krippendorff_alpha,
    label_agreement,
)
from hyouka.ratings.bradley_terry import (
    BradleyTerry,
    RatingsUndefinedError,
    bradley_terry,
    fit_bradley_terry,
    predicted_win_rates,
    rank_by_interval,
)
from hyouka.ratings.elo import bootstrap_elo, online_elo
from hyouka.ratings.votes import PairCounts, Vote, normalize_winner, pair_counts
from hyouka.ratings.winrates import win_rate_matrix

__all__ = [
    "Agreement",
    "BradleyTerry",
    "LabelAgreement",
    "PairCounts",
    "RatingsUndefinedError",
    "Vote",
    "agreement",
    "bootstrap_elo",
    "bradley_terry",
    "cohen_kappa",
    "fit_bradley_terry",
    "krippendorff_alpha",
    "label_agreement",
    "normalize_winner",
    "online_elo",
    "pair_counts",
    "predicted_win_rates",
    "rank_by_interval",
    "win_rate_matrix",
]
