"""Votes from outside into a study: a CSV or JSON-lines file in Chatbot Arena's battle format.

Columns: ``model_a``, ``model_b``, ``winner`` (``a``/``b``/``tie``/``bothbad``, or Arena's
``model_a``/``model_b``/``tie``/``tie (bothbad)``), and optionally ``rater`` (Arena: ``judge``),
``question_id`` and ``category``. ``model_a`` is taken as the side shown on the left. A row
without a rater is a rater of its own (named after the file and line), so importing a file
again replaces its votes instead of adding them twice. The study is created when missing.
Nothing is written unless every row is valid; errors name the file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hyouka.evaluation.human import open_studies
from hyouka.ratings.votes import normalize_winner
from hyouka.store.store import Store
from hyouka.store.studies import StudyStore

__all__ = ["import_arena"]

_FLIP = {"a": "b", "b": "a", "tie": "tie", "bothbad": "bothbad"}


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield line_no, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{line_no}: not JSON ({exc.msg})") from None
        return
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: a JSON file of votes must hold a list of objects")
        yield from enumerate(data, 1)
        return
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


def _vote(path: Path, line_no: int, row: Any) -> dict[str, Any]:
    where = f"{path}:{line_no}"
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a vote must be an object with model_a, model_b, winner")
    missing = [f for f in ("model_a", "model_b", "winner") if not str(row.get(f) or "").strip()]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    a, b = str(row["model_a"]).strip(), str(row["model_b"]).strip()
    if a == b:
        raise ValueError(f"{where}: model {a!r} against itself")
    try:
        winner = normalize_winner(row["winner"])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    rater = str(row.get("rater") or row.get("judge") or "").strip() or f"{path.name}:{line_no}"
    key = str(row.get("question_id") or "").strip() or f"{path.name}:{line_no}"
    flipped = a > b  # items keep their two models in name order; model_a was shown on the left
    if flipped:
        a, b, winner = b, a, _FLIP[winner]
    category = str(row.get("category") or "").strip() or None
    return {"key": key, "model_a": a, "model_b": b, "winner": winner, "rater": rater, "flipped": flipped,
            "category": category}


def import_arena(path: str | Path, *, study: str | None = None,
                 store: Store | StudyStore | str | None = None) -> dict[str, Any]:
    """Import the votes in ``path`` into ``study`` (default: the file's stem); created when missing."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    votes = [_vote(path, line_no, row) for line_no, row in _rows(path)]
    if not votes:
        raise ValueError(f"{path}: no votes")
    studies = open_studies(store)
    name = study or path.stem
    found = studies.find_study(name)
    models = sorted({m for v in votes for m in (v["model_a"], v["model_b"])})
    created = found is None
    if found is None:
        found = studies.create_study(name, kind="pairwise", source="import", models=models,
                                     config={"imported_from": [str(path)]})
    elif found["kind"] != "pairwise":
        raise ValueError(f"study {name!r} is a {found['kind']} study; arena votes are pairwise")
    else:
        sources = list(found["config"].get("imported_from", []))
        studies.update_study(found["id"], models=sorted({*found["models"], *models}),
                             config={**found["config"], "imported_from": [*sources, str(path)]})
    counts = studies.import_votes(found["id"], votes)
    return {"study": name, "created": created, "rows": len(votes), **counts}
