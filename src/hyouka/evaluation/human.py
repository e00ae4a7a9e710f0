"""The human tier: studies over stored runs, rater tokens, the next pair to show, and votes.

``new_study`` builds a study from runs of one task: an item per shared example and pair of runs
(pairwise) or per example and run (rating). ``next_pair`` picks what a rater sees next: the least
covered pair of models first, then the least voted item, each item shown to at most
``raters_per_item`` raters and each rater given at most ``per_rater`` items, with a gold item
every ``gold_every`` votes when the study has gold. Which side shows model A is derived from the
rater and the item (so a reload shows the same sides) and recorded with the vote. Votes are
written at once. A rater who misses gold answers (accuracy under ``gold_accuracy`` after
``gold_minimum`` gold votes) or any attention check is flagged; flagged raters' votes and gold
votes are left out of ratings.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hyouka.ratings.votes import normalize_winner
from hyouka.store.store import Store
from hyouka.store.studies import StudyStore
from hyouka.store.subject import subject_model

__all__ = ["Assignment", "invite", "new_study", "next_pair", "open_studies", "progress", "record_vote"]

DEFAULTS = {"per_rater": 50, "raters_per_item": 3, "gold_every": 10, "gold_accuracy": 0.7, "gold_minimum": 3}
CHOICES = ("left", "right", "tie", "bothbad")


def open_studies(store: Store | StudyStore | str | None = None) -> StudyStore:
    """The study tables of ``store`` (a Store, its URL, or the default store)."""
    if isinstance(store, StudyStore):
        return store
    return StudyStore(store if isinstance(store, Store) else Store(store))


@dataclass
class Assignment:
    """What a rater is shown: a question and one answer (rating) or two, left and right (pairwise)."""

    study: str
    kind: str
    item_id: int
    question: str
    left: str
    right: str | None
    flipped: bool  # model A's answer is on the right
    done: int  # the rater's votes so far
    quota: int
    rubric: str | None = None  # what the scores mean (rating studies given one)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def for_rater(self) -> dict[str, Any]:
        """What a rater's page may know: no side mapping (the page is blind; the vote records the sides)."""
        out = self.to_dict()
        del out["flipped"]
        return out


def _answer_text(sample: dict[str, Any]) -> str:
    if sample.get("output") is not None:
        return str(sample["output"])
    answer = (sample.get("details") or {}).get("answer")
    if isinstance(answer, dict):
        return str(answer.get("text") or "")
    return str(answer if answer is not None else sample.get("prediction") or "")


def _question_text(sample: dict[str, Any]) -> str:
    doc = sample.get("doc") or {}
    for field in ("inputs", "question", "instruction"):
        if doc.get(field):
            return str(doc[field])
    return str(sample.get("prompt") or "")


def _load_gold(path: Path, kind: str) -> list[dict[str, Any]]:
    """Gold items from JSON lines: question, answer_a, answer_b, winner (pairwise) or answer, score (rating);
    ``kind: attention`` marks an attention check."""
    out = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc.msg})") from None
            needed = ("question", "answer_a", "answer_b", "winner") if kind == "pairwise" else \
                ("question", "answer", "score")
            missing = [f for f in needed if f not in row]
            if missing:
                raise ValueError(f"{where}: missing {', '.join(missing)}")
            check = str(row.get("kind", "gold"))
            if check not in ("gold", "attention"):
                raise ValueError(f"{where}: kind {check!r} is neither gold nor attention")
            if kind == "pairwise":
                try:
                    expected: Any = normalize_winner(row["winner"])
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
                content = {"question": str(row["question"]), "answer_a": str(row["answer_a"]),
                           "answer_b": str(row["answer_b"])}
                models = ("gold:a", "gold:b")
            else:
                expected = float(row["score"])
                content = {"question": str(row["question"]), "answer": str(row["answer"])}
                models = ("gold", "")
            out.append({"key": str(row.get("id", f"gold-{line_no}")), "model_a": models[0], "model_b": models[1],
                        "gold": check, "expected": expected, "content": content})
    if not out:
        raise ValueError(f"{path}: no gold items")
    return out


def _run_names(runs: Sequence[dict[str, Any]]) -> list[str]:
    # a judge run's model is its judge: the answers rated are the subject's
    names = [str(r["config"].get("subject_name") or subject_model(r)) for r in runs]
    repeated = {n for n, c in Counter(names).items() if c > 1}
    return [f"{n} ({r['id'][:8]})" if n in repeated else n for n, r in zip(names, runs, strict=True)]


def new_study(
    name: str, runs: Sequence[str], *, kind: str = "pairwise", per_rater: int = DEFAULTS["per_rater"],
    raters_per_item: int = DEFAULTS["raters_per_item"], gold: str | Path | None = None,
    gold_every: int = DEFAULTS["gold_every"], rubric: str | None = None,
    store: Store | StudyStore | str | None = None,
) -> dict[str, Any]:
    """A study over ``runs`` of one task (two or more for pairwise, one or more for rating); ``rubric``: the
    text raters see next to the 1-5 scale (what each score means)."""
    studies = open_studies(store)
    if kind not in ("pairwise", "rating"):
        raise ValueError(f"--kind {kind!r}: use pairwise or rating")
    if len(set(runs)) < (2 if kind == "pairwise" else 1):
        raise ValueError(f"a {kind} study needs {'two different runs' if kind == 'pairwise' else 'a run'}; "
                         f"got {list(runs)}")
    if per_rater < 1 or raters_per_item < 1 or gold_every < 2:
        raise ValueError("--per-rater and raters per item must be positive, gold_every at least 2")
    found = [studies.store.get_run(r) for r in runs]
    tasks = {r["task"] for r in found}
    if len(tasks) > 1:
        raise ValueError(f"the runs are of different tasks ({', '.join(sorted(tasks))}); a study compares one task")
    data = {(r["task_hash"], str((r["config"].get("data") or {}).get("sha256"))) for r in found}
    if len(data) > 1:
        raise ValueError(f"the runs are of different tasks: task {tasks.pop()} over different data or task versions "
                         f"(runs {', '.join(r['id'] for r in found)})")
    names = _run_names(found)
    by_run = []
    for run in found:
        by_run.append({s["doc_id"]: s for s in studies.store.samples(run["id"]) if s.get("status") == "ok"})
    shared = [d for d in by_run[0] if all(d in samples for samples in by_run[1:])]
    if not shared:
        raise ValueError("the runs share no example answered without error")
    items = []
    for doc_id in shared:
        category = (by_run[0][doc_id].get("doc") or {}).get("category")
        if kind == "rating":
            for run, model, samples in zip(found, names, by_run, strict=True):
                items.append({"key": doc_id, "category": category, "model_a": model, "model_b": "",
                              "run_a": run["id"], "sample_a": samples[doc_id]["sample_index"]})
            continue
        for i in range(len(found)):
            for j in range(i + 1, len(found)):
                items.append({"key": doc_id, "category": category, "model_a": names[i], "model_b": names[j],
                              "run_a": found[i]["id"], "run_b": found[j]["id"],
                              "sample_a": by_run[i][doc_id]["sample_index"],
                              "sample_b": by_run[j][doc_id]["sample_index"]})
    if gold is not None:
        items += _load_gold(Path(gold), kind)
    config = {**DEFAULTS, "per_rater": per_rater, "raters_per_item": raters_per_item, "gold_every": gold_every,
              "task": tasks.pop(), "gold_file": str(gold) if gold else None, "rubric": rubric or None}
    study = studies.create_study(name, kind=kind, source="runs", runs=[r["id"] for r in found], models=names,
                                 config=config, items=items)
    return {**study, "n_items": sum(1 for i in items if not i.get("gold")),
            "n_gold": sum(1 for i in items if i.get("gold"))}


def invite(name: str, rater: str | None = None, *, store: Store | StudyStore | str | None = None) -> tuple[str, str]:
    """A new rater for study ``name``: ``(rater name, token)``. The token is shown this once."""
    studies = open_studies(store)
    study = studies.get_study(name)
    row, token = studies.add_rater(study["id"], rater)
    return row["name"], token


def _flipped(study_id: str, rater_id: int, item_id: int) -> bool:
    digest = hashlib.sha256(f"{study_id}:{rater_id}:{item_id}".encode()).digest()
    return bool(digest[0] & 1)


def _order(study_id: str, rater_id: int, item_id: int) -> bytes:
    return hashlib.sha256(f"order:{study_id}:{rater_id}:{item_id}".encode()).digest()


def next_pair(
    name: str, token: str, *, skip: Collection[int] = (), store: Store | StudyStore | str | None = None
) -> Assignment | None:
    """What the rater with ``token`` should judge next, or None when their quota or the study is done.

    ``skip``: item ids the rater passed over this session. Raises PermissionError for an unknown token.
    """
    studies = open_studies(store)
    study = studies.get_study(name)
    config = {**DEFAULTS, **study["config"]}
    rater = studies.rater_by_token(study["id"], token)
    items = studies.items(study["id"])
    votes = studies.votes(study["id"])
    mine = {v["item_id"] for v in votes if v["rater_id"] == rater["id"]}
    done = sum(1 for v in votes if v["rater_id"] == rater["id"] and not v["gold"])
    if done >= config["per_rater"]:
        return None
    open_items = [i for i in items if i["id"] not in mine and i["id"] not in skip]
    gold = [i for i in open_items if i["gold"]]
    chosen = None
    if gold and (len(mine) + 1) % config["gold_every"] == 0:
        chosen = min(gold, key=lambda i: _order(study["id"], rater["id"], i["id"]))
    if chosen is None:
        per_item = Counter(v["item_id"] for v in votes if not v["gold"])
        per_pair = Counter((v["model_a"], v["model_b"]) for v in votes if not v["gold"])
        candidates = [i for i in open_items if not i["gold"] and per_item[i["id"]] < config["raters_per_item"]]
        if not candidates:
            return None
        chosen = min(candidates, key=lambda i: (per_pair[(i["model_a"], i["model_b"])], per_item[i["id"]],
                                                _order(study["id"], rater["id"], i["id"])))
    return _assignment(studies, study, rater, chosen, done, config["per_rater"])


def _assignment(studies: StudyStore, study: dict[str, Any], rater: dict[str, Any], item: dict[str, Any],
                done: int, quota: int) -> Assignment:
    if item["gold"]:
        content = item["content"]
        question, a, b = content["question"], content.get("answer_a", content.get("answer", "")), \
            content.get("answer_b")
    else:
        sample_a = studies.store.samples(item["run_a"], indices=[item["sample_a"]])[0]
        question, a, b = _question_text(sample_a), _answer_text(sample_a), None
        if item["run_b"]:
            b = _answer_text(studies.store.samples(item["run_b"], indices=[item["sample_b"]])[0])
    if study["kind"] == "rating":
        return Assignment(study["name"], "rating", item["id"], question, a, None, False, done, quota,
                          rubric=study["config"].get("rubric"))
    flipped = _flipped(study["id"], rater["id"], item["id"])
    left, right = (b, a) if flipped else (a, b)
    return Assignment(study["name"], "pairwise", item["id"], question, left or "", right or "", flipped, done, quota)


def progress(name: str, token: str, *, store: Store | StudyStore | str | None = None) -> dict[str, Any]:
    """The rater's votes so far (gold items not counted) against their quota, and the study's kind and rubric.
    Raises PermissionError for an unknown token."""
    studies = open_studies(store)
    study = studies.get_study(name)
    rater = studies.rater_by_token(study["id"], token)
    config = {**DEFAULTS, **study["config"]}
    done = sum(1 for v in studies.votes(study["id"], rater_id=rater["id"]) if not v["gold"])
    return {"study": study["name"], "kind": study["kind"], "done": done, "quota": config["per_rater"],
            "rubric": config.get("rubric")}


def record_vote(
    name: str, token: str, item_id: int, choice: str | None = None, *, score: float | None = None,
    store: Store | StudyStore | str | None = None,
) -> dict[str, Any]:
    """Write the rater's vote on ``item_id`` at once: ``choice`` left/right/tie/bothbad (pairwise) or ``score``
    1-5 (rating). Voting again on an item replaces the vote. Returns the vote, in model terms."""
    studies = open_studies(store)
    study = studies.get_study(name)
    rater = studies.rater_by_token(study["id"], token)
    item = studies.item(study["id"], int(item_id))
    if study["kind"] == "rating":
        if score is None or not 1 <= float(score) <= 5:
            raise ValueError(f"a rating study takes a score from 1 to 5, got {score!r}")
        vote = studies.record_vote(study["id"], item["id"], rater["id"], score=float(score))
    else:
        if choice not in CHOICES:
            raise ValueError(f"choice {choice!r} is none of {', '.join(CHOICES)}")
        flipped = _flipped(study["id"], rater["id"], item["id"])
        winner = {"left": "b" if flipped else "a", "right": "a" if flipped else "b"}.get(choice, choice)
        vote = studies.record_vote(study["id"], item["id"], rater["id"], winner=winner, flipped=flipped)
    if item["gold"]:
        _check_gold(studies, study, rater)
    return vote


def _gold_correct(vote: dict[str, Any]) -> bool:
    expected = vote["expected"]
    if isinstance(expected, str):
        tie = {"tie", "bothbad"}
        return vote["winner"] == expected or (expected in tie and vote["winner"] in tie)
    return vote["score"] is not None and abs(float(vote["score"]) - float(expected)) <= 1.0


def _check_gold(studies: StudyStore, study: dict[str, Any], rater: dict[str, Any]) -> None:
    """Flag (or clear) the rater from their gold and attention answers."""
    config = {**DEFAULTS, **study["config"]}
    answered = [v for v in studies.votes(study["id"], rater_id=rater["id"]) if v["gold"]]
    missed_attention = sum(1 for v in answered if v["gold"] == "attention" and not _gold_correct(v))
    gold = [v for v in answered if v["gold"] == "gold"]
    accuracy = sum(_gold_correct(v) for v in gold) / len(gold) if gold else 1.0
    reason = None
    if missed_attention:
        reason = f"failed {missed_attention} attention check(s)"
    elif len(gold) >= config["gold_minimum"] and accuracy < config["gold_accuracy"]:
        reason = f"gold accuracy {accuracy:.2f} < {config['gold_accuracy']} over {len(gold)} gold items"
    studies.flag_rater(rater["id"], reason)
