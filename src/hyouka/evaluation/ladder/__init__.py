"""The prompting ladder: ``hyouka.ladder`` climbs rungs (zero-shot → few-shot → RAG → both) per model,
tracks quality against cost, and recommends the cell for the goal (good enough, fixed budget, step change)."""

from hyouka.evaluation.ladder.analysis import CellResult, Goal, PairedDiff, Recommendation, paired_difference
from hyouka.evaluation.ladder.cells import LadderError
from hyouka.evaluation.ladder.core import LadderResult, ladder
from hyouka.evaluation.ladder.rungs import Rung, RungError, load_rungs, parse_rungs
from hyouka.evaluation.ladder.stored import list_ladders, load_ladder

__all__ = ["CellResult", "Goal", "LadderError", "LadderResult", "PairedDiff", "Recommendation", "Rung", "RungError",
           "ladder", "list_ladders", "load_ladder", "load_rungs", "paired_difference", "parse_rungs"]
