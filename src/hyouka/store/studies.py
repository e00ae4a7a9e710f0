"""Human studies in the results store: studies, their items, raters and votes.

A study compares runs (pairwise: which of two answers is better; rating: a 1-5 score per
answer) on the same examples, or holds votes imported from elsewhere. Raters are known by a
token whose SHA-256 alone is stored. A rater has at most one vote per item: voting again
replaces the vote, so duplicates count once. Each vote records whether model A's answer was
shown on the right (``flipped``). Gold items carry a known answer and flag careless raters.

The tables share the store's metadata and engine; :class:`StudyStore` creates them on first use.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hyouka.store.schema import Base, utcnow
from hyouka.store.store import Store

__all__ = ["StudyNotFoundError", "StudyStore", "hash_token"]


class StudyNotFoundError(LookupError):
    """No study by that name."""


def hash_token(token: str) -> str:
    """What the store keeps of a rater's token (tokens are random and long, so a plain SHA-256 suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StudyRow(Base):
    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="pairwise")  # pairwise|rating
    source: Mapped[str] = mapped_column(String(16), default="runs")  # runs|import
    runs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    models: Mapped[list[Any]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudyItemRow(Base):
    """One thing to judge: a question with two models' answers (pairwise) or one (rating)."""

    __tablename__ = "study_items"
    __table_args__ = (UniqueConstraint("study_id", "key", "model_a", "model_b"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(256))  # the example: a document id or question id
    category: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model_a: Mapped[str] = mapped_column(String(512))
    model_b: Mapped[str] = mapped_column(String(512), default="")  # "" in rating studies
    run_a: Mapped[str | None] = mapped_column(String(32), nullable=True)
    run_b: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sample_a: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sample_b: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gold: Mapped[str | None] = mapped_column(String(16), nullable=True)  # gold|attention
    expected: Mapped[Any] = mapped_column(JSON, nullable=True)  # a gold item's answer: a, b, tie or a score
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # a gold item's question and answers


class RaterRow(Base):
    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)  # None: imported
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VoteRow(Base):
    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("item_id", "rater_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    winner: Mapped[str | None] = mapped_column(String(16), nullable=True)  # a|b|tie|bothbad, in model terms
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # rating studies
    flipped: Mapped[bool] = mapped_column(Boolean, default=False)  # model A's answer was shown on the right
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


_TABLES = [StudyRow.__table__, StudyItemRow.__table__, RaterRow.__table__, VoteRow.__table__]


def _as_dict(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class StudyStore:
    """Studies, items, raters and votes in a :class:`~hyouka.store.store.Store`'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.create_tables(_TABLES)

    # -- studies --------------------------------------------------------------
    def create_study(self, name: str, *, kind: str, source: str, runs: Sequence[str] = (),
                     models: Sequence[str] = (), config: dict[str, Any] | None = None,
                     items: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
        """A new study with its items, in one transaction; a taken name is an error."""
        if kind not in ("pairwise", "rating"):
            raise ValueError(f"study kind {kind!r} is neither pairwise nor rating")
        with self.store.session() as s, s.begin():
            if s.scalars(select(StudyRow).where(StudyRow.name == name)).first() is not None:
                raise ValueError(f"a study named {name!r} exists already")
            row = StudyRow(id=uuid.uuid4().hex[:12], name=name, kind=kind, source=source, runs=list(runs),
                           models=list(models), config=config or {})
            s.add(row)
            s.flush()
            s.add_all(StudyItemRow(study_id=row.id, **item) for item in items)
            return _as_dict(row)

    def find_study(self, name: str) -> dict[str, Any] | None:
        with self.store.session() as s:
            row = s.scalars(select(StudyRow).where(StudyRow.name == name)).first()
            return _as_dict(row) if row else None

    def get_study(self, name: str) -> dict[str, Any]:
        study = self.find_study(name)
        if study is None:
            names = [r["name"] for r in self.list_studies()]
            raise StudyNotFoundError(f"no study {name!r} in the store ({self.store.url}); studies: {names or 'none'}")
        return study

    def list_studies(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            return [_as_dict(r) for r in s.scalars(select(StudyRow).order_by(StudyRow.created_at))]

    def update_study(self, study_id: str, **fields: Any) -> None:
        with self.store.session() as s, s.begin():
            row = s.get(StudyRow, study_id)
            for key, value in fields.items():
                setattr(row, key, value)

    # -- items ----------------------------------------------------------------
    def items(self, study_id: str) -> list[dict[str, Any]]:
        with self.store.session() as s:
            query = select(StudyItemRow).where(StudyItemRow.study_id == study_id).order_by(StudyItemRow.id)
            return [_as_dict(r) for r in s.scalars(query)]

    def item(self, study_id: str, item_id: int) -> dict[str, Any]:
        with self.store.session() as s:
            row = s.get(StudyItemRow, item_id)
            if row is None or row.study_id != study_id:
                raise LookupError(f"no item {item_id} in this study")
            return _as_dict(row)

    # -- raters ---------------------------------------------------------------
    def add_rater(self, study_id: str, name: str | None = None) -> tuple[dict[str, Any], str]:
        """A new rater and their token (returned once; the store keeps only its hash)."""
        token = secrets.token_urlsafe(24)
        with self.store.session() as s, s.begin():
            if name is None:
                count = len(s.scalars(select(RaterRow.id).where(RaterRow.study_id == study_id)).all())
                name = f"rater-{count + 1}"
            elif s.scalars(select(RaterRow).where(RaterRow.study_id == study_id, RaterRow.name == name)).first():
                raise ValueError(f"the study has a rater named {name!r} already")
            row = RaterRow(study_id=study_id, name=name, token_hash=hash_token(token))
            s.add(row)
            s.flush()
            return _as_dict(row), token

    def rater_by_token(self, study_id: str, token: str) -> dict[str, Any]:
        with self.store.session() as s:
            row = s.scalars(select(RaterRow).where(RaterRow.token_hash == hash_token(token))).first()
        if row is None or row.study_id != study_id:
            raise PermissionError("unknown rater token for this study")
        return _as_dict(row)

    def raters(self, study_id: str) -> list[dict[str, Any]]:
        with self.store.session() as s:
            query = select(RaterRow).where(RaterRow.study_id == study_id).order_by(RaterRow.id)
            return [_as_dict(r) for r in s.scalars(query)]

    def flag_rater(self, rater_id: int, reason: str | None) -> None:
        """Flag a rater as careless (``reason``), or clear the flag (``None``)."""
        with self.store.session() as s, s.begin():
            row = s.get(RaterRow, rater_id)
            row.flagged, row.flag_reason = reason is not None, reason

    # -- votes ----------------------------------------------------------------
    def record_vote(self, study_id: str, item_id: int, rater_id: int, *, winner: str | None = None,
                    score: float | None = None, flipped: bool = False) -> dict[str, Any]:
        """Write a vote at once; a rater's second vote on an item replaces the first."""
        for attempt in range(2):
            try:
                with self.store.session() as s, s.begin():
                    row = s.scalars(select(VoteRow).where(VoteRow.item_id == item_id,
                                                          VoteRow.rater_id == rater_id)).first()
                    if row is None:
                        row = VoteRow(study_id=study_id, item_id=item_id, rater_id=rater_id)
                        s.add(row)
                    row.winner, row.score, row.flipped, row.created_at = winner, score, flipped, utcnow()
                    s.flush()
                    return _as_dict(row)
            except IntegrityError:  # the same vote sent twice at once: the other request inserted it first
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def import_votes(self, study_id: str, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Add items, raters and votes from ``rows`` (``key``, ``model_a``, ``model_b``, ``category``, ``rater``,
        ``winner``, ``flipped``) in one transaction; ``{"votes": new, "replaced": duplicates}``."""
        new = replaced = 0
        with self.store.session() as s, s.begin():
            items = {(r.key, r.model_a, r.model_b): r for r in
                     s.scalars(select(StudyItemRow).where(StudyItemRow.study_id == study_id))}
            raters = {r.name: r for r in s.scalars(select(RaterRow).where(RaterRow.study_id == study_id))}
            votes = {(v.item_id, v.rater_id): v for v in
                     s.scalars(select(VoteRow).where(VoteRow.study_id == study_id))}
            fresh_items = {}
            for r in rows:
                key = (r["key"], r["model_a"], r["model_b"])
                if key not in items and key not in fresh_items:
                    fresh_items[key] = StudyItemRow(study_id=study_id, key=key[0], model_a=key[1], model_b=key[2],
                                                    category=r.get("category"))
            fresh_raters = {name: RaterRow(study_id=study_id, name=name, token_hash=None)
                            for name in dict.fromkeys(r["rater"] for r in rows) if name not in raters}
            s.add_all([*fresh_items.values(), *fresh_raters.values()])
            s.flush()  # one round trip gives every new item and rater its id
            items.update(fresh_items)
            raters.update(fresh_raters)
            for r in rows:
                item, rater = items[(r["key"], r["model_a"], r["model_b"])], raters[r["rater"]]
                vote = votes.get((item.id, rater.id))
                if vote is None:
                    vote = votes[(item.id, rater.id)] = VoteRow(study_id=study_id, item_id=item.id, rater_id=rater.id)
                    s.add(vote)
                    new += 1
                else:
                    replaced += 1
                vote.winner, vote.score, vote.flipped = r.get("winner"), r.get("score"), bool(r.get("flipped"))
        return {"votes": new, "replaced": replaced}

    def votes(self, study_id: str, *, rater_id: int | None = None) -> list[dict[str, Any]]:
        """Votes with their item's key, category, models and gold answer, and the rater's name and flag."""
        with self.store.session() as s:
            query = (
                select(VoteRow, StudyItemRow, RaterRow)
                .join(StudyItemRow, VoteRow.item_id == StudyItemRow.id)
                .join(RaterRow, VoteRow.rater_id == RaterRow.id)
                .where(VoteRow.study_id == study_id)
                .order_by(VoteRow.id)
            )
            if rater_id is not None:
                query = query.where(VoteRow.rater_id == rater_id)
            out = []
            for vote, item, rater in s.execute(query):
                out.append({
                    **_as_dict(vote), "key": item.key, "category": item.category, "model_a": item.model_a,
                    "model_b": item.model_b, "gold": item.gold, "expected": item.expected, "rater": rater.name,
                    "flagged": rater.flagged,
                })
            return out
