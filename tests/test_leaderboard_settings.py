"""The leaderboard from real runs (scripted models through the runner): settings, probes, partial suites.

Issue 10 item 2: a cell was keyed by few-shot count, prompt family and mode only, and the newest
run won, so a ``--limit 3`` probe replaced the full run; averages were taken over whatever tasks
a row had, in two places, and only one honoured ``lower_is_better``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.report.build import build_report
from hyouka.report.leaderboard import build_leaderboard, build_leaderboards
from hyouka.report.tables import render_boards
from hyouka.store.store import Store
from hyouka.tasks.registry import SuiteEntry, SuiteSpec
from tests.fakes import ScriptedModel

JNLI_DOCS = 40
MARC_REVIEWS = [
    ("この掃除機は吸引力が強く、音も静かでとても満足しています。", "positive"),
    ("届いた商品は箱が潰れていて、電源も入りませんでした。", "negative"),
    ("値段の割に作りがしっかりしていて、毎日使っています。", "positive"),
    ("説明書が分かりにくく、設定に一時間もかかった。", "negative"),
    ("デザインが可愛くて、友人にも褒められました。", "positive"),
    ("一週間で壊れました。二度と買いません。", "negative"),
    ("配送が早く、梱包も丁寧でした。", "positive"),
    ("サイズ表記と実物が全然違って着られなかった。", "negative"),
]


def _varied_number(prompt: str) -> str:
    """A JSTS-like answer that varies with the prompt (so Pearson is defined)."""
    return f"{sum(map(ord, prompt)) % 51 / 10:.1f}"


@pytest.fixture()
def jnli_file(tmp_path: Path, jglue_dir: Path) -> Path:
    """The first JNLI validation pairs, as a user's own data file (a full run stays quick)."""
    lines = (jglue_dir / "jnli-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8").splitlines()[:JNLI_DOCS]
    path = tmp_path / "jnli-valid.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def marc_file(tmp_path: Path) -> Path:
    path = tmp_path / "marc_ja.jsonl"
    path.write_text("".join(json.dumps({"sentence": s, "label": y}, ensure_ascii=False) + "\n"
                            for s, y in MARC_REVIEWS), encoding="utf-8")
    return path


def _url(store: Store) -> str:
    return str(store.url)


# -- a probe never replaces the full run --------------------------------------------------------
def test_probe_run_is_its_own_row_and_never_replaces_the_full_run(
    jnli_file: Path, jglue_dir: Path, store: Store
) -> None:
    model = ScriptedModel()
    full = hyouka.run(model, "jnli", data_dir=jglue_dir, data_files={"jnli": jnli_file}, store=store, cache=False)
    probe = hyouka.run(model, "jnli", limit=3, data_dir=jglue_dir, data_files={"jnli": jnli_file}, store=store,
                       cache=False)
    board = build_leaderboard(store, suite="jglue")
    by_setting = {row.setting: row for row in board.rows}
    assert set(by_setting) == {"0-shot plain loglikelihood", "0-shot plain loglikelihood limit 3"}
    full_cell = by_setting["0-shot plain loglikelihood"].cells["jnli"]
    assert full_cell.run_id == full["jnli"].run_id and full_cell.n_total == JNLI_DOCS
    assert full_cell.value == full["jnli"].aggregates["acc"]["value"]
    assert by_setting["0-shot plain loglikelihood limit 3"].cells["jnli"].run_id == probe["jnli"].run_id
    # the CLI shows the same rows, from the same function
    result = CliRunner().invoke(app, ["leaderboard", "--store", _url(store), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["setting"], r["jnli"]["n_total"]) for r in rows} == {("0-shot plain loglikelihood", JNLI_DOCS),
                                                                   ("0-shot plain loglikelihood limit 3", 3)}


def _retrained() -> ScriptedModel:
    """The same model name, other weights: another identity."""
    model = ScriptedModel(answer=_varied_number)
    identity = {**model.identity(), "revision": "retrained"}
    model.identity = lambda: identity  # type: ignore[method-assign]
    return model


def test_every_setting_that_changes_a_number_splits_rows(jglue_dir: Path, store: Store) -> None:
    answer = ScriptedModel(answer=_varied_number)
    options = {"limit": 6, "data_dir": jglue_dir, "store": store, "cache": False}
    runs = [
        hyouka.run(answer, "jsts", **options),
        hyouka.run(answer, "jsts", max_tokens=4, **options),
        hyouka.run(answer, "jsts", chat=True, **options),
        hyouka.run(answer, "jsts", num_fewshot=2, **options),
        hyouka.run(_retrained(), "jsts", **options),
    ]
    board = build_leaderboard(store, suite=None)
    assert len(board.rows) == 5  # five settings, five rows; nothing replaced
    assert {row.cells["jsts"].run_id for row in board.rows} == {r["jsts"].run_id for r in runs}
    settings = sorted(row.setting for row in board.rows)
    assert "0-shot plain generate limit 6 max_tokens 4" in settings
    assert "0-shot plain generate limit 6 chat" in settings
    assert "2-shot plain generate limit 6" in settings
    same_label = [s for s in settings if s.startswith("0-shot plain generate limit 6 #")]
    assert len(same_label) == 2  # the retrained model's identity differs: told apart by the setting's digest
    # the same command again: the newest run of the same setting and content takes the cell
    again = hyouka.run(answer, "jsts", max_tokens=4, **options)
    board = build_leaderboard(store, suite=None)
    assert len(board.rows) == 5
    row = next(r for r in board.rows if r.setting.endswith("max_tokens 4"))
    assert row.cells["jsts"].run_id == again["jsts"].run_id


# -- suite averages: complete rows only, lower_is_better, one computation ---------------------
def test_complete_jglue_run_has_the_same_average_in_the_api_and_the_leaderboard(
    jglue_dir: Path, marc_file: Path, store: Store
) -> None:
    result = hyouka.run(ScriptedModel(answer=_varied_number), "jglue", limit=6, data_dir=jglue_dir,
                        data_files={"marc_ja": marc_file}, store=store, cache=False)
    headline = {"jcommonsenseqa": "acc", "jnli": "acc", "jsts": "pearson", "jsquad": "char_f1", "marc_ja": "acc"}
    values = [result[t].aggregates[m]["value"] for t, m in headline.items()]
    assert all(v is not None for v in values)
    by_hand = sum(values) / 5
    api = result.suite_scores["jglue"]
    assert api["complete"] and api["missing"] == [] and api["score"] == pytest.approx(by_hand)
    (row,) = build_leaderboard(store, suite="jglue").rows
    assert not row.partial and set(row.cells) == set(headline)
    assert row.average == pytest.approx(by_hand) and row.n_tasks_averaged == 5
    errors = [result[t].aggregates[m]["stderr"] for t, m in headline.items()]
    se = math.sqrt(sum((1 / 5) ** 2 * e**2 for e in errors))
    assert row.average_ci_low == pytest.approx(by_hand - 1.959963984540054 * se)
    assert api["ci_high"] == pytest.approx(by_hand + 1.959963984540054 * se)


def test_partial_rows_get_no_average_and_are_listed_after(jglue_dir: Path, store: Store) -> None:
    suite = SuiteSpec(suite="pair", version="1", tasks=[SuiteEntry(task="jnli", metric="acc"),
                                                        SuiteEntry(task="jsts", metric="pearson")])
    both, only_jnli = ScriptedModel(answer=_varied_number), ScriptedModel(answer=_varied_number)
    only_jnli.name = "half"
    options = {"limit": 8, "data_dir": jglue_dir, "store": store, "cache": False}
    hyouka.run(only_jnli, "jnli", **options)
    done = hyouka.run(both, "jnli,jsts", **options)
    board = build_leaderboard(store, suite=suite)
    first, second = board.rows
    assert first.model == "ScriptedModel:scripted" and not first.partial
    assert first.average == pytest.approx((done["jnli"].metric("acc") + done["jsts"].metric("pearson")) / 2)
    assert second.model == "ScriptedModel:half" and second.partial and second.missing == ["jsts"]
    assert second.average is None and second.n_tasks_averaged == 0
    md = render_boards([board], "markdown")
    assert "partial: no jsts" in md and "| — | ScriptedModel:half" in md and "| 1 | ScriptedModel:scripted" in md


def test_lower_is_better_counts_the_same_in_the_api_and_the_leaderboard(
    jglue_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyouka import api
    from hyouka.tasks import registry

    suite = SuiteSpec(suite="errs", version="1", tasks=[
        SuiteEntry(task="jnli", metric="format_error_rate", lower_is_better=True),
        SuiteEntry(task="jsts", metric="pearson"),
    ])
    suites = {**registry.builtin_suites(), "errs": suite}
    monkeypatch.setattr(registry, "builtin_suites", lambda: suites)
    monkeypatch.setattr(api, "builtin_suites", lambda: suites)
    # JNLI answered with a number: never one of its choices, so its format error rate is 1.0
    result = hyouka.run(ScriptedModel(answer=_varied_number), "errs", mode="generate", limit=8, data_dir=jglue_dir,
                        store=store, cache=False)
    rate, pearson = result["jnli"].metric("format_error_rate"), result["jsts"].metric("pearson")
    assert rate == 1.0 and pearson is not None
    by_hand = ((1 - rate) + pearson) / 2
    assert result.suite_scores["errs"]["score"] == pytest.approx(by_hand)
    (row,) = build_leaderboard(store, suite=suite).rows
    assert row.average == pytest.approx(by_hand)


def test_suite_none_shows_every_task_without_an_average(jglue_dir: Path, store: Store) -> None:
    hyouka.run(ScriptedModel(answer=_varied_number), "jnli,jsts", mode="generate", limit=6, data_dir=jglue_dir,
               store=store, cache=False)
    (board,) = build_leaderboards(store, suite="none")
    assert board.tasks == ["jnli", "jsts"] and not board.has_average
    assert all(row.average is None for row in board.rows)
    result = CliRunner().invoke(app, ["leaderboard", "--suite", "none", "--store", _url(store), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "average" not in result.stdout.splitlines()[0] and "jsts" in result.stdout.splitlines()[0]


# -- the default tables: what the store holds ---------------------------------------------------
def _mt_bench_run(store: Store, mt_bench_dir: Path) -> str:
    answers = mt_bench_dir / "model_answer" / "jslma-7b-ja-orca-6k-3ep.jsonl"
    judge = mt_bench_dir / "model_judgment" / "gpt-4_single.jsonl"
    result = hyouka.run(f"recorded:{answers}", "ja_mt_bench", judge=f"recorded:{judge}", data_dir=mt_bench_dir,
                        limit=2, store=store, cache=False)
    return result.runs[0].run_id


def _eval_run(store: Store, tmp_path: Path) -> str:
    from hyouka.evaluation import evaluate

    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"question": "日本の首都は?", "answer": "東京"}, {"question": "富士山がある県は?", "answer": "静岡県"}]),
        encoding="utf-8")
    return evaluate(ScriptedModel(answer=lambda _: "東京"), data, inputs="question", targets="answer",
                    metrics="exact_match", store=store, cache=False).run_id


def test_default_tables_show_jglue_mt_bench_and_eval_apart(
    jglue_dir: Path, mt_bench_dir: Path, store: Store, tmp_path: Path
) -> None:
    jnli = hyouka.run(ScriptedModel(), "jnli", limit=5, data_dir=jglue_dir, store=store, cache=False)
    mt_bench = _mt_bench_run(store, mt_bench_dir)
    eval_run = _eval_run(store, tmp_path)
    boards = build_leaderboards(store)
    assert [b.title for b in boards] == ["suite jglue", "Japanese MT-Bench (judge scores, 1-10)",
                                         "hyouka eval runs"]
    jglue, mt, ev = boards
    assert [r.cells["jnli"].run_id for r in jglue.rows] == [jnli["jnli"].run_id]
    assert mt.tasks == ["ja_mt_bench"] and mt.rows[0].cells["ja_mt_bench"].run_id == mt_bench
    assert mt.rows[0].model.endswith("jslma-7b-ja-orca-6k-3ep.jsonl") and not mt.has_average
    assert mt.rows[0].cells["ja_mt_bench"].value is not None
    assert ev.rows[0].cells[next(iter(ev.rows[0].cells))].run_id == eval_run and not ev.has_average
    # the report shows the same tables
    report = build_report(store, charts=False)
    assert [b.title for b in report.boards] == [b.title for b in boards]
    assert [[r.run_ids for r in b.rows] for b in report.boards] == [[r.run_ids for r in b.rows] for b in boards]
    # an empty store has no table (never one empty JGLUE table)
    empty = Store(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert build_leaderboards(empty) == []
    result = CliRunner().invoke(app, ["leaderboard", "--store", str(empty.url)])
    assert result.exit_code == 0 and "no completed runs" in result.stdout


def test_mt_bench_runs_of_two_judge_settings_are_two_rows(mt_bench_dir: Path, store: Store) -> None:
    answers = mt_bench_dir / "model_answer" / "jslma-7b-ja-orca-6k-3ep.jsonl"
    judge = f"recorded:{mt_bench_dir / 'model_judgment' / 'gpt-4_single.jsonl'}"
    options = {"judge": judge, "data_dir": mt_bench_dir, "limit": 2, "store": store, "cache": False}
    first = hyouka.run(f"recorded:{answers}", "ja_mt_bench", **options)
    second = hyouka.run(f"recorded:{answers}", "ja_mt_bench", judge_max_tokens=1024, **options)
    (board,) = build_leaderboards(store)
    assert len(board.rows) == 2  # the newer run with another judge budget replaces nothing
    assert {r.cells["ja_mt_bench"].run_id for r in board.rows} == {first.runs[0].run_id, second.runs[0].run_id}
    assert sorted(r.setting.rsplit(" ", 1)[-1] for r in board.rows) == ["1024", "2048"]  # judge_max_tokens


def test_suite_average_by_hand() -> None:
    from hyouka.metrics.suite import SuiteTerm, suite_average

    avg = suite_average([SuiteTerm("a", 0.8, 3.0, stderr=0.1), SuiteTerm("b", 0.2, 1.0, True, stderr=0.2)])
    assert avg.value == pytest.approx((3 * 0.8 + 1 * 0.8) / 4) and avg.complete  # b enters as 1 - 0.2
    se = math.sqrt((3 / 4) ** 2 * 0.01 + (1 / 4) ** 2 * 0.04)
    assert avg.ci_low == pytest.approx(0.8 - 1.959963984540054 * se)
    missing = suite_average([SuiteTerm("a", 0.8), SuiteTerm("b", None), SuiteTerm("c", float("nan"))])
    assert missing.value is None and missing.missing == ("b", "c") and missing.tasks == ("a",)
    odd = suite_average([SuiteTerm("a", 0.8), SuiteTerm("loss", 2.5, lower_is_better=True)])
    assert odd.value is None and odd.missing == ("loss",) and "outside [0, 1]" in (odd.note or "")
    unweighted = suite_average([SuiteTerm("a", 0.5), SuiteTerm("ignored", None, weight=0.0)])
    assert unweighted.value == 0.5 and unweighted.complete
