"""Prompting ladders in the results store: what was climbed (task, metric, goal, models, rungs) and the run of
each (model, rung) cell. The cells' numbers stay in their runs; a ladder is read back by measuring them again
(:func:`hyouka.evaluation.ladder.load_ladder`).

A ladder's id is a digest of what it holds, so the same ladder climbed again (every cell taken up from the
store) is the same ladder, seen again, not a second one. The table shares the store's metadata and engine;
:class:`LadderStore` creates it on first use.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from hyouka.store.schema import Base, utcnow
from hyouka.store.store import Store

__all__ = ["LadderNotFoundError", "LadderStore"]


class LadderNotFoundError(LookupError):
    """No ladder by that id."""


class LadderRow(Base):
    __tablename__ = "ladders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # climbed again
    task: Mapped[str] = mapped_column(String(512))
    metric: Mapped[str] = mapped_column(String(128))
    goal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # target, budget
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # models, rungs, stop_at_goal, seed, prices
    cells: Mapped[list[Any]] = mapped_column(JSON, default=list)  # model, rung, line, step, status, run_id


def _as_dict(row: LadderRow) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class LadderStore:
    """Ladders in a :class:`~hyouka.store.store.Store`'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.create_tables([LadderRow.__table__])

    def save(self, *, task: str, metric: str, goal: dict[str, Any], spec: dict[str, Any],
             cells: list[dict[str, Any]]) -> str:
        """Store a ladder (or note that it was climbed again) and return its id."""
        content = {"task": task, "metric": metric, "goal": goal, "spec": spec, "cells": cells}
        ladder_id = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]
        with self.store.session() as s, s.begin():
            row = s.get(LadderRow, ladder_id)
            if row is None:
                s.add(LadderRow(id=ladder_id, **content))
            else:
                row.seen_at = utcnow()
        return ladder_id

    def get(self, ladder_id: str) -> dict[str, Any]:
        """A ladder by id or unique id prefix."""
        with self.store.session() as s:
            row = s.get(LadderRow, ladder_id)
            rows = [row] if row is not None else s.scalars(
                select(LadderRow).where(LadderRow.id.startswith(ladder_id, autoescape=True))).all()
        if len(rows) == 1:
            return _as_dict(rows[0])
        what = "no ladder" if not rows else f"{len(rows)} ladders start with"
        raise LadderNotFoundError(f"{what} {ladder_id!r} in {self.store.url}")

    def list(self) -> list[dict[str, Any]]:
        """Every ladder, the one climbed last first."""
        with self.store.session() as s:
            return [_as_dict(r) for r in s.scalars(select(LadderRow).order_by(LadderRow.seen_at.desc()))]
