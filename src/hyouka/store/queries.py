"""Filtered, paginated reads of the store for the views (dashboard, API): filtering and paging in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Float, and_, cast, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from hyouka.store.schema import AggregateRow, RunRow, SampleRow
from hyouka.store.store import Store, _as_dict

__all__ = ["Page", "aligned_page", "documents", "group_scores", "results_signature", "run_choices", "runs_page",
           "samples_page"]

MAX_PAGE = 500


@dataclass
class Page:
    """One page of rows and how many rows match in all."""

    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def _bounds(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    return offset, limit


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def runs_page(store: Store, *, model: str | None = None, task: str | None = None, status: str | None = None,
              kind: str | None = None, since: date | None = None, until: date | None = None, offset: int = 0,
              limit: int = 100) -> Page:
    """Runs matching every filter given (exact values; ``since``/``until``: created on or after / on or
    before that day, UTC), newest first."""
    offset, limit = _bounds(offset, limit)
    where: list[ColumnElement[bool]] = []
    for column, value in ((RunRow.model, model), (RunRow.task, task), (RunRow.status, status), (RunRow.kind, kind)):
        if value:
            where.append(column == value)
    if since is not None:
        where.append(RunRow.created_at >= datetime.combine(since, time(), timezone.utc))
    if until is not None:
        where.append(RunRow.created_at < datetime.combine(until + timedelta(days=1), time(), timezone.utc))
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(RunRow).where(*where)) or 0
        query = select(RunRow).where(*where).order_by(RunRow.created_at.desc(), RunRow.id).offset(offset).limit(limit)
        items = [_as_dict(r) for r in s.scalars(query)]
    return Page(items, total, offset, limit)


def run_choices(store: Store) -> dict[str, list[str]]:
    """The distinct models, tasks, statuses and kinds of the stored runs (for filter menus)."""
    out: dict[str, list[str]] = {}
    with store.session() as s:
        for name, column in (("model", RunRow.model), ("task", RunRow.task), ("status", RunRow.status),
                             ("kind", RunRow.kind)):
            out[name] = list(s.scalars(select(column).distinct().order_by(column)))
    return out


def results_signature(store: Store) -> tuple[Any, ...]:
    """A cheap fingerprint of the runs and aggregates: it changes when a run starts, finishes or is rescored."""
    with store.session() as s:
        runs = s.execute(select(func.count(), func.max(RunRow.created_at), func.max(RunRow.finished_at),
                                func.sum(RunRow.n_samples))).one()
        aggs = s.execute(select(func.count(), func.sum(AggregateRow.value), func.max(AggregateRow.id))).one()
    return (*runs, *aggs)


def _metric_value(metric: str, table: Any = SampleRow) -> ColumnElement[Any]:
    return cast(table.metrics[metric].as_float(), Float)


def _contains(store: Store, column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holds ``text``, ignoring case; SQLite's LIKE ignores ASCII case by itself (as its lower() folds
    ASCII only), where lower() on every row would cost a copy of each prompt."""
    pattern = f"%{_escape_like(text)}%"
    if store.engine.dialect.name == "sqlite":
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def samples_page(store: Store, run_id: str, *, status: str | None = None, correct: bool | None = None,
                 metric: str | None = None, min_score: float | None = None, max_score: float | None = None,
                 search: str | None = None, offset: int = 0, limit: int = 50) -> Page:
    """A run's samples in index order, filtered in SQL.

    ``status``: the record status (ok, format_error, api_error…). ``correct``: with ``metric``, True
    keeps samples whose metric is 1 or more (full credit), False those scored below 1 (a sample the
    metric did not score is neither). ``min_score``/``max_score``: with ``metric``, samples whose score
    lies in that closed range. ``search``: a case-insensitive substring of the prompt or the output.
    """
    offset, limit = _bounds(offset, limit)
    where: list[ColumnElement[bool]] = [SampleRow.run_id == run_id]
    if status:
        where.append(SampleRow.status == status)
    if (correct is not None or min_score is not None or max_score is not None) and not metric:
        raise ValueError("filtering by correct/incorrect or by score needs the metric that decides it")
    if metric:
        value = _metric_value(metric)
        if correct is not None:
            where.append(value >= 1.0 if correct else and_(value.is_not(None), value < 1.0))
        if min_score is not None:
            where.append(value >= float(min_score))
        if max_score is not None:
            where.append(value <= float(max_score))
    if search:
        where.append(or_(_contains(store, SampleRow.prompt, search), _contains(store, SampleRow.output, search)))
    query = select(SampleRow).where(*where).order_by(SampleRow.sample_index).offset(offset).limit(limit)
    with store.session() as s:
        items = [_as_dict(r) for r in s.scalars(query)]
        if 0 < len(items) < limit or (not items and not offset):
            total = offset + len(items)  # the page query read every match: no second pass to count them
        else:  # a full page (the query stopped early) or past the end: count
            total = s.scalar(select(func.count()).select_from(SampleRow).where(*where)) or 0
    return Page(items, total, offset, limit)


ALIGN_FILTERS = ("all", "disagree", "a_right_b_wrong", "a_better")


def aligned_page(store: Store, run_ids: list[str], *, only: str = "all", metric: str | None = None,
                 offset: int = 0, limit: int = 20) -> Page:
    """Documents of several runs side by side: each item is a ``doc_id`` and every run's sample of it.

    ``only``: ``all``; ``disagree``, documents whose extracted answers (the output where none was
    extracted) differ between the runs; ``a_right_b_wrong``, documents that the first run gets right
    and the second wrong by ``metric`` (right: 1 or more); ``a_better``, documents the first run
    scores higher than the second by ``metric`` (for graded scores). Items come in the first run's order
    (with ``all``, the documents only other runs have follow).
    """
    offset, limit = _bounds(offset, limit)
    if only not in ALIGN_FILTERS:
        raise ValueError(f"only must be one of {', '.join(ALIGN_FILTERS)}, got {only!r}")
    if not run_ids:
        return Page([], 0, offset, limit)
    if only in ("a_right_b_wrong", "a_better"):
        if len(run_ids) < 2 or not metric:
            raise ValueError("'where A is right and B wrong' and 'where A scores higher' need two runs and the "
                             "metric that decides it")
        a, b = aliased(SampleRow), aliased(SampleRow)
        value_a, value_b = _metric_value(metric, a), _metric_value(metric, b)
        condition = and_(value_a >= 1.0, value_b < 1.0) if only == "a_right_b_wrong" else value_a > value_b
        keys = (select(a.doc_id.label("doc_id"), func.min(a.sample_index).label("position"))
                .join(b, and_(b.doc_id == a.doc_id, b.run_id == run_ids[1]))
                .where(a.run_id == run_ids[0], condition).group_by(a.doc_id))  # a repeated id: one item
        sizes = _sizes(store, run_ids[:2])
        if sizes.get(run_ids[1], 0) < sizes.get(run_ids[0], 0):
            # redundant with the join: lets the planner start from the smaller second run's documents
            keys = keys.where(a.doc_id.in_(select(SampleRow.doc_id).where(SampleRow.run_id == run_ids[1])))
    elif only == "all":
        return _all_page(store, run_ids, offset, limit)
    else:
        keys = (select(SampleRow.doc_id.label("doc_id"), func.min(SampleRow.sample_index).label("position"))
                .where(SampleRow.run_id.in_(run_ids)).group_by(SampleRow.doc_id))
        if only == "disagree":
            # a document two runs answer is in some run other than the largest: only those are grouped
            sizes = _sizes(store, run_ids)
            largest = max(run_ids, key=lambda r: sizes.get(r, 0))
            others = [r for r in run_ids if r != largest] or run_ids
            shared = select(SampleRow.doc_id).where(SampleRow.run_id.in_(others))
            answer = func.coalesce(SampleRow.extracted, SampleRow.output, "")
            keys = keys.where(SampleRow.doc_id.in_(shared)).having(func.count(func.distinct(answer)) > 1)
    keyed = keys.subquery()
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(keyed)) or 0
        doc_ids = list(s.scalars(select(keyed.c.doc_id).order_by(keyed.c.position, keyed.c.doc_id)
                                 .offset(offset).limit(limit)))
    return _aligned(store, run_ids, doc_ids, total, offset, limit)


def _sizes(store: Store, run_ids: list[str]) -> dict[str, int]:
    """Each run's number of samples (from the runs table: no sample is read)."""
    with store.session() as s:
        return dict(s.execute(select(RunRow.id, RunRow.n_samples).where(RunRow.id.in_(run_ids))).all())


def _aligned(store: Store, run_ids: list[str], doc_ids: list[str], total: int, offset: int, limit: int) -> Page:
    found = documents(store, run_ids, doc_ids)
    items = [{"doc_id": d, "samples": {r: found.get(d, {}).get(r) for r in run_ids}} for d in doc_ids]
    return Page(items, total, offset, limit)


def _all_page(store: Store, run_ids: list[str], offset: int, limit: int) -> Page:
    """Every document once: the first run's in its order (read on its index), then those only the others have.

    A document id the first run holds twice is one item (where it first appears), in the page and the total."""
    first, others = run_ids[0], run_ids[1:]
    in_first = select(SampleRow.doc_id).where(SampleRow.run_id == first)
    extra = (select(SampleRow.doc_id.label("doc_id"), func.min(SampleRow.sample_index).label("position"))
             .where(SampleRow.run_id.in_(others), SampleRow.doc_id.not_in(in_first))
             .group_by(SampleRow.doc_id).subquery())
    mine = SampleRow.run_id == first
    with store.session() as s:
        n_rows = s.scalar(select(func.count()).select_from(SampleRow).where(mine)) or 0
        # distinct ids on the (run_id, doc_id) index; equal to the rows unless some id repeats
        n_first = s.scalar(select(func.count(func.distinct(SampleRow.doc_id))).where(mine)) or 0
        n_extra = (s.scalar(select(func.count()).select_from(extra)) or 0) if others else 0
        doc_ids: list[str] = []
        if offset < n_first:
            query = select(SampleRow.doc_id).where(mine)
            if n_first < n_rows:  # only each id's first sample: a probe of the doc index per row
                earlier = aliased(SampleRow)
                query = query.where(~select(earlier.id).where(
                    earlier.run_id == first, earlier.doc_id == SampleRow.doc_id,
                    earlier.sample_index < SampleRow.sample_index).exists())
            doc_ids = list(s.scalars(query.order_by(SampleRow.sample_index).offset(offset).limit(limit)))
        if len(doc_ids) < limit and n_extra:
            skip = max(0, offset - n_first)
            doc_ids += s.scalars(select(extra.c.doc_id).order_by(extra.c.position, extra.c.doc_id)
                                 .offset(skip).limit(limit - len(doc_ids)))
    return _aligned(store, run_ids, doc_ids, n_first + n_extra, offset, limit)



def group_scores(store: Store, run_ids: list[str], metric: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Mean of ``metric`` per run and per value of the document ``fields`` (e.g. MT-Bench's category and
    turn), computed in SQL: ``run_id``, each field, ``n`` samples, ``n_scored`` and ``mean`` (None: none scored)."""
    if not run_ids:
        return []
    value = _metric_value(metric)
    keys = [SampleRow.doc[f].as_string().label(f) for f in fields]
    query = (select(SampleRow.run_id, *keys, func.count(), func.count(value), func.avg(value))
             .where(SampleRow.run_id.in_(run_ids)).group_by(SampleRow.run_id, *keys))
    with store.session() as s:
        rows = s.execute(query).all()
    return [{"run_id": r[0], **dict(zip(fields, r[1:-3], strict=True)), "n": r[-3], "n_scored": r[-2],
             "mean": None if r[-1] is None else float(r[-1])} for r in rows]


def documents(store: Store, run_ids: list[str], doc_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{doc_id: {run_id: sample}}`` for the given documents of the given runs (one indexed lookup each); a run
    holding a document id twice gives its first sample of it."""
    if not run_ids or not doc_ids:
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with store.session() as s:
        query = (select(SampleRow).where(SampleRow.run_id.in_(run_ids), SampleRow.doc_id.in_(doc_ids))
                 .order_by(SampleRow.sample_index))
        for row in s.scalars(query):
            found = out.setdefault(row.doc_id, {})
            if row.run_id not in found:
                found[row.run_id] = _as_dict(row)
    return out
