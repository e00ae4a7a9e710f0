"""``hyouka.human``: the human tier's Python API in one place (studies, raters, votes, ratings, agreement).

    from hyouka import human
    human.new_study("support-ab", [run_a, run_b], per_rater=50)
    name, token = human.invite("support-ab")
    shown = human.next_pair("support-ab", token)          # what the rater page shows
    human.record_vote("support-ab", token, shown.item_id, "left")
    human.study_ratings("support-ab")                     # Bradley-Terry and Elo with 95% intervals
"""

from hyouka.evaluation.human import Assignment, invite, new_study, next_pair, open_studies, progress, record_vote
from hyouka.evaluation.human_import import import_arena
from hyouka.evaluation.human_results import (
    list_studies,
    study_agreement,
    study_overview,
    study_ratings,
    study_votes,
)

__all__ = [
    "Assignment",
    "import_arena",
    "invite",
    "list_studies",
    "new_study",
    "next_pair",
    "open_studies",
    "progress",
    "record_vote",
    "study_agreement",
    "study_overview",
    "study_ratings",
    "study_votes",
]
