"""Human study commands: ``hyouka human new | invite | import | ratings | agreement``."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import Format, StoreOpt, console, emit, err, escape, fail, fmt
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS

human = typer.Typer(help="Human studies: blind A/B votes and 1-5 ratings, Elo and Bradley-Terry, agreement.",
                    no_args_is_help=True)
app.add_typer(human, name="human")

_ERRORS = (ValueError, LookupError, PermissionError, OSError)


def _split(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


@human.command("new")
def new_cmd(
    runs: Annotated[list[str], typer.Argument(help="the runs to compare (after --runs)", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="the study's name")],
    runs_flag: Annotated[bool, typer.Option("--runs", help="the run ids follow, space-separated")] = False,
    kind: Annotated[str, typer.Option(help="pairwise (A/B/tie/both bad) or rating (1-5)")] = "pairwise",
    per_rater: Annotated[int, typer.Option("--per-rater", help="items per rater at most")] = 50,
    raters_per_item: Annotated[int, typer.Option("--raters-per-item", help="raters shown each item (k)")] = 3,
    gold: Annotated[Path | None, typer.Option("--gold", help="gold items (.jsonl) that flag careless raters")] = None,
    gold_every: Annotated[int, typer.Option("--gold-every", help="a gold item every N votes")] = 10,
    rubric: Annotated[Path | None, typer.Option(
        "--rubric", help="a text or markdown file shown to raters next to the 1-5 scale (rating studies)")] = None,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Create a study over runs of one task: each shared example and pair of runs becomes an item."""
    from hyouka.evaluation.human import new_study

    try:
        text = rubric.read_text(encoding="utf-8") if rubric is not None else None
        study = new_study(name, _split(runs), kind=kind, per_rater=per_rater, raters_per_item=raters_per_item,
                          gold=gold, gold_every=gold_every, rubric=text, store=store)
    except _ERRORS as exc:
        fail(str(exc))
        return
    if format != "table":
        emit(study, format)
        return
    console.print(f"study [bold]{escape(name)}[/] ({study['kind']}): {study['n_items']} items, "
                  f"{study['n_gold']} gold, models {escape(', '.join(study['models']))}")
    console.print(f"next: `hyouka human invite {escape(name)}` for each rater")


@human.command("invite")
def invite_cmd(
    study: Annotated[str, typer.Argument(help="the study's name")],
    rater: Annotated[str | None, typer.Option("--rater", help="a name for the rater (default rater-N)")] = None,
    store: StoreOpt = None,
) -> None:
    """Add a rater and print their token, once: the store keeps only its hash."""
    from hyouka.evaluation.human import invite

    try:
        name, token = invite(study, rater, store=store)
    except _ERRORS as exc:
        fail(str(exc))
        return
    err.print(f"rater {escape(name)}: the token below is shown this once; the page is /rate/{escape(study)}?token=…")
    print(token)


@human.command("import")
def import_cmd(
    source: Annotated[str, typer.Argument(help="the format: arena (model_a, model_b, winner, rater, question_id)")],
    path: Annotated[Path, typer.Argument(help="a .csv or .jsonl file of votes")],
    study: Annotated[str | None, typer.Option("--study", help="the study (default: the file's name)")] = None,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Import outside votes into a study, creating it when it does not exist."""
    from hyouka.evaluation.human_import import import_arena

    if source != "arena":
        fail(f"unknown import format {source!r}: use arena")
    try:
        result = import_arena(path, study=study, store=store)
    except _ERRORS as exc:
        fail(str(exc))
        return
    if format != "table":
        emit(result, format)
        return
    made = "created" if result["created"] else "added to"
    console.print(f"{result['rows']} rows {made} study [bold]{escape(result['study'])}[/]: {result['votes']} new "
                  f"votes, {result['replaced']} repeated votes by the same rater on the same item (counted once)")


def _ratings_table(result: dict[str, Any]) -> TextTable:
    title = f"{clean(result['study'])}: {result['n_votes']} votes, {result['n_raters']} raters"
    if result["kind"] == "rating":
        columns = ("rank", "model", "mean score", "95% interval", "votes")
        table = TextTable(columns, title=title, right=[c for c in columns if c != "model"])
        for r in result["rows"]:
            table.add_row(str(r["rank"]), r["model"], fmt(r["mean_score"], 2),
                          f"{fmt(r['ci_low'], 2)} – {fmt(r['ci_high'], 2)}", str(r["n_votes"]))
        return table
    columns = ("rank", "model", "BT", "BT 95%", "Elo", "Elo 95%", "votes", "W/L/T")
    table = TextTable(columns, title=title, right=[c for c in columns if c != "model"])
    for r in result["rows"]:
        wlt = f"{r['wins']}/{r['losses']}/{r['ties']}" if "wins" in r else "—"
        table.add_row(str(r.get("rank", "—")), r["model"], fmt(r.get("rating"), 0),
                      f"{fmt(r.get('ci_low'), 0)}–{fmt(r.get('ci_high'), 0)}", fmt(r["elo"], 0),
                      f"{fmt(r.get('elo_low'), 0)}–{fmt(r.get('elo_high'), 0)}", str(r.get("n_votes", "—")), wlt)
    return table


@human.command("ratings")
def ratings_cmd(
    study: Annotated[str, typer.Argument(help="the study's name")],
    rounds: Annotated[int, typer.Option(help="bootstrap rounds for the 95% intervals (0: none)")] = 1000,
    seed: Annotated[int, typer.Option(help="the bootstrap's seed")] = 0,
    k: Annotated[float, typer.Option("--k", help="Elo K factor")] = 4.0,
    anchor: Annotated[str | None, typer.Option(help="MODEL=RATING: pin one model's Bradley-Terry rating")] = None,
    include_flagged: Annotated[bool, typer.Option("--include-flagged", help="count flagged raters' votes")] = False,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Bradley-Terry and Elo ratings with 95% intervals, rank by interval, votes per model."""
    from hyouka.evaluation.human_results import study_ratings

    pinned = None
    if anchor:
        model, _, value = anchor.rpartition("=")
        try:
            pinned = (model, float(value))
        except ValueError:
            fail(f"--anchor {anchor!r}: use MODEL=RATING, e.g. gpt-4o=1200")
        if not model:
            fail(f"--anchor {anchor!r}: use MODEL=RATING, e.g. gpt-4o=1200")
    try:
        result = study_ratings(study, rounds=rounds, seed=seed, k=k, anchor=pinned, include_flagged=include_flagged,
                               store=store)
    except _ERRORS as exc:
        fail(str(exc))
        return
    if format != "table":
        emit(result, format)
        return
    _ratings_table(result).print()
    console.print("BT: Bradley-Terry; rank: 1 + the models whose BT interval lies wholly above; a tie is half a win")
    if result["n_left_out"]:
        err.print(f"[yellow]{result['n_left_out']} votes of flagged raters left out[/] (--include-flagged counts them)")
    if result.get("note"):
        err.print(f"[yellow]note:[/] {escape(result['note'])}")


@human.command("agreement")
def agreement_cmd(
    study: Annotated[str, typer.Argument(help="the study's name")],
    judge_run: Annotated[list[str], typer.Option("--judge-run", help="a pairwise judge run, or graded judge runs "
                                                                     "(one per model; repeatable)")],
    include_flagged: Annotated[bool, typer.Option(
        "--include-flagged", help="count the votes of raters flagged by gold items")] = False,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """How far a judge agrees with the study's people, and the people with each other, per category."""
    from hyouka.evaluation.human_results import study_agreement

    try:
        result = study_agreement(study, _split(judge_run), include_flagged=include_flagged, store=store)
    except _ERRORS as exc:
        fail(str(exc))
        return
    if format != "table":
        emit(result, format)
        return
    if result["kind"] == "rating":
        r = result["judge_vs_people"]
        columns = ("items", "n", "spearman", "exact", "within 1", "Cohen's κ", "Krippendorff's α")
        table = TextTable(columns, title=f"judge vs people on {clean(study)}", right=columns)
        for label, row in [("all", r), *r["per_category"].items()]:
            table.add_row(label, str(row["n"]), fmt(row["spearman"], 3), fmt(row["exact"], 3),
                          fmt(row["within_one"], 3), fmt(row["kappa"], 3), fmt(row["alpha"], 3))
        table.print()
        console.print(f"people with each other: Krippendorff's alpha {fmt(result['people_alpha'], 3)}")
        return
    columns = ("who", "items", "pairs", "with ties", "pairs w/o ties", "without ties", "Cohen's κ",
               "Krippendorff's α")
    table = TextTable(columns, title=f"agreement on {clean(study)}", right=columns[2:])
    for who in ("judge_vs_people", "people_vs_people"):
        r = result[who]
        for label, row in [("all", r), *r["per_category"].items()]:
            table.add_row(who.replace("_", " "), label, str(row["n"]), fmt(row["exact"], 3),
                          str(row["n_without_ties"]), fmt(row["exact_without_ties"], 3), fmt(row["kappa"], 3),
                          fmt(row.get("alpha"), 3))
    table.print()
    console.print(f"people with each other: Krippendorff's alpha {fmt(result['people_alpha'], 3)}")
    if "judge_inconsistency_rate" in result:
        console.print(f"judge position-swap inconsistency rate: {fmt(result['judge_inconsistency_rate'], 3)}")
    if result["n_unmatched_votes"]:
        err.print(f"[yellow]{result['n_unmatched_votes']} votes had no judge verdict on their item[/]")
