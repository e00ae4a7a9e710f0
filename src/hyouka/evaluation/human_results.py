"""What a study's votes say: ratings of the models, and how far a judge agrees with the people.

Gold items and the votes of flagged raters are left out unless asked for.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

import numpy as np

from hyouka.evaluation.data import predictions_name
from hyouka.evaluation.human import open_studies
from hyouka.judge.pairwise import win_rates
from hyouka.ratings import (
    RatingsUndefinedError,
    agreement,
    bootstrap_elo,
    bradley_terry,
    krippendorff_alpha,
    label_agreement,
    online_elo,
    win_rate_matrix,
)
from hyouka.store.store import Store
from hyouka.store.studies import StudyStore

__all__ = ["list_studies", "study_agreement", "study_overview", "study_ratings", "study_votes"]


def study_votes(name: str, *, include_flagged: bool = False,
                store: Store | StudyStore | str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """``(study, votes, n_left_out)``: the study's votes on real items, in the order they were cast."""
    studies = open_studies(store)
    study = studies.get_study(name)
    votes = [v for v in studies.votes(study["id"]) if not v["gold"]]
    kept = [v for v in votes if include_flagged or not v["flagged"]]
    return study, kept, len(votes) - len(kept)


def study_overview(name: str, *, store: Store | StudyStore | str | None = None) -> dict[str, Any]:
    """A study at a glance: its kind, models and runs, items, votes, and each rater's votes and flag."""
    studies = open_studies(store)
    study = studies.get_study(name)
    items = studies.items(study["id"])
    votes = studies.votes(study["id"])
    per_rater: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for v in votes:
        per_rater[v["rater_id"]].append(v)
    raters = []
    for r in studies.raters(study["id"]):
        mine = per_rater.get(r["id"], [])
        raters.append({"name": r["name"], "votes": sum(1 for v in mine if not v["gold"]),
                       "gold_votes": sum(1 for v in mine if v["gold"]), "imported": r["token_hash"] is None,
                       "flagged": bool(r["flagged"]), "flag_reason": r["flag_reason"]})
    config = study["config"] or {}
    return {"study": study["name"], "kind": study["kind"], "source": study["source"], "models": study["models"],
            "runs": study["runs"], "task": config.get("task"), "created_at": study["created_at"],
            "n_items": sum(1 for i in items if not i["gold"]), "n_gold": sum(1 for i in items if i["gold"]),
            "n_votes": sum(1 for v in votes if not v["gold"]), "per_rater": config.get("per_rater"),
            "raters_per_item": config.get("raters_per_item"), "raters": raters}


def list_studies(store: Store | StudyStore | str | None = None) -> list[dict[str, Any]]:
    """Every study in the store, oldest first: name, kind, models and when it was made."""
    return [{"study": s["name"], "kind": s["kind"], "source": s["source"], "models": s["models"],
             "created_at": s["created_at"]} for s in open_studies(store).list_studies()]


def _score_rows(votes: list[dict[str, Any]], rounds: int, seed: int) -> list[dict[str, Any]]:
    """Mean 1-5 score per model with a percentile bootstrap interval (rating studies)."""
    by_model: dict[str, list[float]] = defaultdict(list)
    for v in votes:
        if v["score"] is not None:
            by_model[v["model_a"]].append(float(v["score"]))
    rng = np.random.default_rng(seed)
    rows = []
    for model, scores in by_model.items():
        x = np.array(scores)
        means = x[rng.integers(0, x.size, (rounds, x.size))].mean(axis=1) if rounds else None
        low, high = (np.percentile(means, [2.5, 97.5]) if means is not None else (None, None))
        rows.append({"model": model, "mean_score": float(x.mean()), "ci_low": None if low is None else float(low),
                     "ci_high": None if high is None else float(high), "n_votes": int(x.size)})
    rows.sort(key=lambda r: -r["mean_score"])
    for r in rows:
        r["rank"] = 1 + sum(1 for o in rows if o["ci_low"] is not None and r["ci_high"] is not None
                            and o["ci_low"] > r["ci_high"])
    return rows


def study_ratings(
    name: str, *, rounds: int = 1000, seed: int = 0, k: float = 4.0, anchor: tuple[str, float] | None = None,
    include_flagged: bool = False, store: Store | StudyStore | str | None = None,
) -> dict[str, Any]:
    """Bradley-Terry and online Elo ratings with 95% bootstrap intervals, ranks by interval, n votes per model,
    and the observed win-rate matrix (pairwise studies); mean scores with intervals (rating studies)."""
    study, votes, left_out = study_votes(name, include_flagged=include_flagged, store=store)
    out: dict[str, Any] = {"study": study["name"], "kind": study["kind"], "n_votes": len(votes),
                           "n_raters": len({v["rater_id"] for v in votes}), "n_left_out": left_out,
                           "rounds": rounds, "seed": seed, "note": None}
    if study["kind"] == "rating":
        out["rows"] = _score_rows(votes, rounds, seed)
        return out
    triples = [(v["model_a"], v["model_b"], v["winner"]) for v in votes if v["winner"]]
    if not triples:
        out["rows"], out["note"] = [], "no votes yet"
        return out
    elo = online_elo(triples, k=k)
    rows: dict[str, dict[str, Any]] = {m: {"model": m, "elo": r} for m, r in elo.items()}
    if rounds:
        models, boot = bootstrap_elo(triples, rounds=rounds, seed=seed, k=k)
        low, high = np.percentile(boot, [2.5, 97.5], axis=0)
        for m, lo, hi in zip(models, low, high, strict=True):
            rows[m].update(elo_low=float(lo), elo_high=float(hi))
    try:
        bt = bradley_terry(triples, rounds=rounds, seed=seed, anchor=anchor)
    except RatingsUndefinedError as exc:
        out["note"] = f"Bradley-Terry undefined: {exc}"
        for r in rows.values():
            r["n_votes"] = sum(1 for t in triples if r["model"] in t[:2])
        out["rows"] = sorted(rows.values(), key=lambda r: -r["elo"])
        return out
    for r in bt.rows():
        rows[r["model"]].update(rank=r["rank"], rating=r["rating"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                                n_votes=r["n_votes"], wins=r["wins"], losses=r["losses"], ties=r["ties"])
    out["rows"] = sorted(rows.values(), key=lambda r: -r["rating"])
    out["n_unconverged_rounds"] = bt.n_unconverged
    models, rates, n = win_rate_matrix(triples)
    out["win_rates"] = {"models": models, "rates": [[None if np.isnan(x) else float(x) for x in row] for row in rates],
                        "n": n.astype(int).tolist()}
    return out


# -- agreement ------------------------------------------------------------------
def _judge_names(run: dict[str, Any], sample: dict[str, Any], side: str) -> set[str]:
    details = sample.get("details") or {}
    config = run["config"]
    names = {config.get(f"model_{side}"), details.get(f"model_{side}")}
    columns = config.get("predictions") or [None, None]
    column = columns["ab".index(side)] if len(columns) == 2 else None
    source = (config.get("data") or {}).get("source")
    if column and source and config.get(f"model_{side}") == f"predictions:{column}":
        names.add(predictions_name(source, column))  # a pairwise run stored before both names were one
    return {str(n) for n in names if n}


def _keys(sample: dict[str, Any]) -> set[str]:
    doc = sample.get("doc") or {}
    keys = {str(sample["doc_id"])}
    if doc.get("question_id") is not None:
        keys.add(str(doc["question_id"]) if int(doc.get("turn", 1)) == 1 else f"{doc['question_id']}:{doc['turn']}")
    return keys


def _pairwise_verdicts(store: Store, run: dict[str, Any]
                       ) -> tuple[dict[tuple, str | None], dict[str, str], list[dict]]:
    """``(key, model, model) -> winner model (None: a tie)`` from a pairwise judge run, categories, outcomes."""
    verdicts: dict[tuple, str | None] = {}
    categories: dict[str, str] = {}
    outcomes = []
    for s in store.samples(run["id"]):
        pair = (s.get("details") or {}).get("pair")
        outcomes.append(pair or {"status": s["status"]})
        if s["status"] != "ok" or not pair or pair.get("winner") is None:
            continue
        names_a, names_b = _judge_names(run, s, "a"), _judge_names(run, s, "b")
        for key in _keys(s):
            if (s.get("doc") or {}).get("category"):
                categories[key] = str(s["doc"]["category"])
            for a in names_a:
                for b in names_b:
                    winner = {"A": a, "B": b}.get(pair["winner"])
                    verdicts[(key, a, b)] = verdicts[(key, b, a)] = winner
    return verdicts, categories, outcomes


def _graded_scores(store: Store, run: dict[str, Any]) -> tuple[dict[tuple[str, str], float], dict[str, str]]:
    """``(key, model) -> score`` from a graded judge run: its ``score`` metric, or its one judge metric."""
    names = {str(n) for n in (run["config"].get("subject_name"), run["config"].get("subject_model")) if n}
    scores: dict[tuple[str, str], float] = {}
    categories: dict[str, str] = {}
    for s in store.samples(run["id"]):
        metrics = s.get("metrics") or {}
        judged = [m for m in (s.get("details") or {}).get("judge") or {} if m in metrics]
        value = metrics.get("score", metrics[judged[0]] if len(judged) == 1 else None)
        if s["status"] != "ok" or value is None:
            continue
        for key in _keys(s):
            if (s.get("doc") or {}).get("category"):
                categories[key] = str(s["doc"]["category"])
            for name in names:
                scores[(key, name)] = float(value)
    return scores, categories


def _label(vote: dict[str, Any]) -> str:
    """A vote as a, b or tie (both kinds of tie are one)."""
    return "tie" if vote["winner"] in ("tie", "bothbad") else vote["winner"]


def _verdict(vote: dict[str, Any], verdicts: dict[tuple, str | None],
             scores: dict[tuple[str, str], float]) -> str | None:
    """The judge's a, b or tie on the vote's item: from a pairwise verdict, else from the two models' grades."""
    key, a, b = vote["key"], vote["model_a"], vote["model_b"]
    if (key, a, b) in verdicts:
        winner = verdicts[(key, a, b)]
        return "tie" if winner is None else "a" if winner == a else "b"
    if (key, a) in scores and (key, b) in scores:
        sa, sb = scores[(key, a)], scores[(key, b)]
        return "a" if sa > sb else "b" if sb > sa else "tie"
    return None


def _people_pairs(votes: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[str | None]]:
    by_item: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for v in votes:
        by_item[v["item_id"]].append(v)
    pairs, cats = [], []
    for item_votes in by_item.values():
        for x, y in combinations(item_votes, 2):
            pairs.append((_label(x), _label(y)))
            cats.append(x["category"])
    return pairs, cats


def _alpha(votes: list[dict[str, Any]], value: Any, level: str) -> float | None:
    raters = sorted({v["rater_id"] for v in votes})
    items = sorted({v["item_id"] for v in votes})
    if len(raters) < 2:
        return None
    r_index, i_index = {r: k for k, r in enumerate(raters)}, {i: k for k, i in enumerate(items)}
    data = np.full((len(raters), len(items)), np.nan)
    for v in votes:
        data[r_index[v["rater_id"]], i_index[v["item_id"]]] = value(v)
    return krippendorff_alpha(data, level)


def study_agreement(
    name: str, judge_runs: list[str], *, include_flagged: bool = False,
    store: Store | StudyStore | str | None = None,
) -> dict[str, Any]:
    """How far the judge runs agree with the study's people, and the people with each other.

    A pairwise judge run gives a verdict per item; graded judge runs (one per model) give scores, which
    become verdicts (the higher score wins, equal scores tie) for pairwise studies and are compared as
    scores for rating studies. Also: the judge's position-swap inconsistency rate (pairwise runs).
    """
    studies = open_studies(store)
    study, votes, left_out = study_votes(name, include_flagged=include_flagged, store=studies)
    base = studies.store
    runs = [base.get_run(r) for r in judge_runs]
    verdicts: dict[tuple, str | None] = {}
    scores: dict[tuple[str, str], float] = {}
    categories: dict[str, str] = {}
    outcomes: list[dict[str, Any]] = []
    for run in runs:
        if run["kind"] == "pairwise":
            found, cats, outs = _pairwise_verdicts(base, run)
            verdicts.update(found)
            outcomes += outs
        else:
            found_scores, cats = _graded_scores(base, run)
            scores.update(found_scores)
        categories.update(cats)
    out: dict[str, Any] = {"study": study["name"], "kind": study["kind"], "judge_runs": [r["id"] for r in runs],
                           "n_votes": len(votes), "n_left_out": left_out}
    if outcomes:
        out["judge_inconsistency_rate"] = win_rates(outcomes)["inconsistency_rate"]
    if study["kind"] == "rating":
        people = {(v["item_id"], v["rater_id"]): v["score"] for v in votes}
        judge = {(v["item_id"], v["rater_id"]): scores.get((v["key"], v["model_a"])) for v in votes}
        cats = {(v["item_id"], v["rater_id"]): v["category"] or categories.get(v["key"], "unknown") for v in votes}
        out["judge_vs_people"] = agreement(judge, people, cats).to_dict()
        out["people_alpha"] = _alpha(votes, lambda v: v["score"], "ordinal")
        return out
    pairs, cats_list, unmatched = [], [], 0
    for v in votes:
        verdict = _verdict(v, verdicts, scores)
        if verdict is None:
            unmatched += 1
            continue
        pairs.append((verdict, _label(v)))
        cats_list.append(v["category"] or categories.get(v["key"]))
    if not pairs and votes:
        judged = sorted({m for key in verdicts for m in key[1:]} | {k[1] for k in scores})
        voted = sorted({m for v in votes for m in (v["model_a"], v["model_b"])})
        raise ValueError(f"no vote of study {study['name']!r} matches a verdict of the judge run(s): the judge "
                         f"compared {judged or 'nothing'}, the people {voted}; keys must be the same example ids")
    out["judge_vs_people"] = label_agreement(pairs, cats_list).to_dict()
    out["n_unmatched_votes"] = unmatched
    people_pairs, people_cats = _people_pairs(votes)
    out["people_vs_people"] = label_agreement(people_pairs, people_cats).to_dict()
    codes = {"a": 0.0, "b": 1.0, "tie": 2.0}
    out["people_alpha"] = _alpha(votes, lambda v: codes[_label(v)], "nominal")
    return out
