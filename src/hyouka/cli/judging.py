"""Judge commands: eval, pairwise, agreement."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import (
    Format,
    JudgeBaseUrlOpt,
    JudgeMaxTokensOpt,
    JudgeOpt,
    StoreOpt,
    api_error,
    console,
    emit,
    err,
    escape,
    fail,
    fmt,
    judge_backend_options,
    progress_bars,
)
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS

# the Python API's keywords, as each command spells them (an API error names the flag to give)
_EVAL_FLAGS = {"targets": "--targets-column", "predictions": "--predictions-column", "inputs": "--inputs-column",
               "context": "--context-column", "id": "--id-column", "id_column": "--id-column", "model": "--model",
               "judge": "--judge", "index": "--index", "k": "--top-k", "relevant": "--relevant-column"}
_PAIRWISE_FLAGS = {**_EVAL_FLAGS, "predictions": "--predictions", "model": "--models"}

_OPENAI_OPTIONS = ("base_url", "api_key_env", "concurrency")
_HF_OPTIONS = ("dtype", "device", "batch_size")


def _options_for(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that ``spec``'s backend takes (openai options for openai:, hf options for hf:)."""
    prefix = spec.partition(":")[0]
    wanted = {"openai": _OPENAI_OPTIONS, "azure": ("concurrency",), "databricks": ("concurrency",), "hf": _HF_OPTIONS,
              "vllm": ("dtype",)}.get(prefix, ())
    return {k: v for k, v in options.items() if k in wanted and v is not None}


def _write_rows(path: Path, frames: list[Any]) -> None:
    import pandas as pd

    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if path.suffix == ".csv":
        # every text field quoted: a bare \r (or any other line break) inside one cannot split its row
        table.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    else:
        table.to_json(path, orient="records", lines=True, force_ascii=False)


def _print_metrics(results: list[Any]) -> None:
    names = list(dict.fromkeys(name for r in results for name in r.aggregates))
    table = TextTable(("metric", *[clean(r.model) for r in results]), title="evaluation",
                      right=[clean(r.model) for r in results])
    for name in names:
        cells = []
        for r in results:
            agg = r.aggregates.get(name)
            cells.append("—" if agg is None else f"{fmt(agg['value'], 3)} ({agg['n_scored']}/{agg['n_total']})")
        table.add_row(name, *cells)
    table.add_row("run", *[r.run_id for r in results])
    table.print()
    for r in results:
        for name, agg in r.aggregates.items():
            if agg["value"] is None and agg.get("note"):
                err.print(f"[yellow]{escape(r.model)} {name}:[/] {escape(agg['note'])}")


@app.command("eval")
def eval_cmd(
    data: Annotated[Path, typer.Argument(help="CSV, JSON lines, JSON or Parquet file")],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="model to answer (repeatable)")] = None,
    judge: JudgeOpt = None,
    metrics: Annotated[str | None, typer.Option(help="comma-separated: exact_match,char_f1,rouge_l,"
                                                     "answer_correctness,… or rubric .yaml files")] = None,
    predictions_column: Annotated[str | None, typer.Option("--predictions-column", help="existing answers")] = None,
    targets_column: Annotated[str | None, typer.Option("--targets-column", help="ground truth")] = None,
    inputs_column: Annotated[str | None, typer.Option("--inputs-column", help="question or prompt")] = None,
    context_column: Annotated[str | None, typer.Option(
        "--context-column", help="retrieved or given context, for faithfulness metrics")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="row ids (default: id, question_id…)")] = None,
    language: Annotated[str, typer.Option(help="rubric language: ja or en")] = "ja",
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="most tokens per model answer")] = 256,
    system_prompt: Annotated[str | None, typer.Option(
        "--system-prompt", help="system message sent to the models before each question")] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N rows")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="endpoint of openai: models")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key")] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    dtype: Annotated[str | None, typer.Option(help="hf: auto, float32, bfloat16, float16")] = None,
    device: Annotated[str | None, typer.Option(help="hf: auto, cpu, cuda")] = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_max_tokens: JudgeMaxTokensOpt = None,
    index: Annotated[str | None, typer.Option(
        "--index", help="answer each question from this index's chunks (`hyouka index list`); they become its "
                        "context")] = None,
    top_k: Annotated[int | None, typer.Option(
        "--top-k", "-k", min=1, help="with --index: chunks retrieved per question (default 4)")] = None,
    relevant_column: Annotated[str | None, typer.Option(
        "--relevant-column", help="with --index: each question's relevant document ids, for retrieval metrics "
                                  "(default: relevant_doc_ids)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the results as JSON")] = None,
    rows: Annotated[Path | None, typer.Option("--rows", help="write the per-row table (.csv or .jsonl)")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="text encoding of DATA, e.g. cp932 for Shift-JIS")] = (
        "utf-8"),
    format: Format = "table",
) -> None:
    """Evaluate models' answers (or existing predictions) on your own data, with heuristic and judge metrics."""
    from hyouka.evaluation import evaluate

    if not model and predictions_column is None:
        fail("give --model (repeatable) or --predictions-column with the answers to judge")
    if index is None and (top_k is not None or relevant_column is not None):
        fail("--top-k and --relevant-column are for retrieval: give --index (see `hyouka index list`)")
    rag = {"index": index, "k": top_k, "relevant": relevant_column} if index is not None else {}
    options = {"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency, "dtype": dtype,
               "device": device}
    results = []
    try:
        with progress_bars() as progress:
            for spec in model or [None]:
                results.append(evaluate(
                    spec, data, targets=targets_column, predictions=predictions_column, inputs=inputs_column,
                    context=context_column, id_column=id_column, metrics=metrics, judge=judge, language=language,
                    max_tokens=max_tokens, system_prompt=system_prompt, limit=limit, store=store,
                    cache=not no_cache, progress=progress(spec or str(data.name)),
                    judge_options=judge_backend_options(judge_base_url), encoding=encoding, **rag,
                    **({"judge_max_tokens": judge_max_tokens} if judge_max_tokens else {}),
                    **(_options_for(spec, options) if spec else {}),
                ))
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished rows are stored; run the same command to resume")
        raise typer.Exit(code=130) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        fail(api_error(exc, _EVAL_FLAGS))
        return
    if format != "table":
        emit([r.to_dict() for r in results], format)
    else:
        _print_metrics(results)
    if output:
        output.write_text(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2, default=str),
                          encoding="utf-8")
    if rows:
        _write_rows(rows, [r.table.assign(model=r.model) for r in results])


@app.command("pairwise")
def pairwise_cmd(
    models: Annotated[str, typer.Option("--models", help="A,B: two model specs")],
    data: Annotated[Path, typer.Option("--data", help="an MT-Bench folder (question.jsonl) or a data file")],
    judge: Annotated[str, typer.Option("--judge", help="judge model: openai:gpt-4o…")],
    predictions: Annotated[str | None, typer.Option(help="A,B: prediction columns instead of models")] = None,
    inputs_column: Annotated[str | None, typer.Option("--inputs-column", help="question or prompt")] = None,
    targets_column: Annotated[str | None, typer.Option("--targets-column", help="reference answers")] = None,
    turns: Annotated[str, typer.Option(help="MT-Bench turns to compare")] = "1,2",
    language: Annotated[str, typer.Option(help="judge prompt language: ja or en")] = "ja",
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", min=1, help="most tokens per model answer (default: MT-Bench's per category, else 256)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N questions or rows")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="endpoint of openai: models")] = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_max_tokens: JudgeMaxTokensOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Compare two models with a judge; each item is judged in both orders, and flips count as ties."""
    specs = [m.strip() for m in models.split(",")]
    columns = [c.strip() or None for c in predictions.split(",")] if predictions else [None, None]
    if len(specs) != 2 or len(columns) != 2:
        fail("--models (and --predictions) take exactly two comma-separated values")
    try:
        with progress_bars() as progress:
            result = _pairwise(specs, columns, data, judge, inputs_column, targets_column, turns, language,
                               max_tokens, limit, base_url, judge_base_url, not no_cache, store, progress("pairwise"),
                               judge_max_tokens)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished items are stored; run the same command to resume")
        raise typer.Exit(code=130) from None
    except (ValueError, LookupError, RuntimeError, ImportError, OSError) as exc:
        fail(api_error(exc, _PAIRWISE_FLAGS))
        return
    if format != "table":
        emit(result, format)
        return
    rates = result["win_rates"]
    columns = ("A wins", "B wins", "ties", "inconsistent", "win rate A", "win rate B", "judged", "run")
    table = TextTable(columns, title=f"A = {clean(specs[0])}, B = {clean(specs[1])}, judge {clean(judge)}",
                      right=columns[:-1])
    table.add_row(str(rates["wins_a"]), str(rates["wins_b"]), str(rates["ties"]), str(rates["inconsistent"]),
                  fmt(rates["win_rate_a"], 3), fmt(rates["win_rate_b"], 3),
                  f"{rates['n_judged']}/{rates['n_total']}", result["run_id"])
    table.print()
    console.print("win rates count a tie as half a win; a verdict that flips with the order is a tie (inconsistent)")


def _pairwise(specs: list[str], columns: list[str | None], data: Path, judge: str, inputs: str | None,
              targets: str | None, turns: str, language: str, max_tokens: int | None, limit: int | None,
              base_url: str | None, judge_base_url: str | None, cache: bool, store: str | None,
              progress: Callable[[int, int], None], judge_max_tokens: int | None = None) -> dict[str, Any]:
    """MT-Bench pairwise when ``data`` is an MT-Bench folder, else pairwise on the rows of a data file."""
    from hyouka.evaluation.backends import open_cache, resolve_model
    from hyouka.judge.tasks import mt_bench_data_dir
    from hyouka.store.store import Store

    options = {"base_url": base_url}
    judge_budget = {"judge_max_tokens": judge_max_tokens} if judge_max_tokens else {}
    root = mt_bench_data_dir(data, None) if data.is_dir() else None
    if root is None:
        from hyouka.evaluation import pairwise

        models = [None if c else s for s, c in zip(specs, columns, strict=True)]
        return pairwise(models, data, judge=judge, predictions=columns, inputs=inputs, targets=targets,
                        language=language, max_tokens=max_tokens or 256, limit=limit, store=store, cache=cache,
                        progress=progress, judge_options=judge_backend_options(judge_base_url), **judge_budget,
                        **_options_for(specs[0], options)).to_dict()
    from hyouka.judge.mt_bench.pairwise import run_pairwise

    a, b = (resolve_model(s, _options_for(s, options)) for s in specs)
    result = run_pairwise(
        a, specs[0], b, specs[1], resolve_model(judge, judge_backend_options(judge_base_url)), judge,
        store=Store(store), cache=open_cache(cache), data_dir=root, turns=[int(t) for t in turns.split(",")],
        limit=limit, language=language, progress=progress, **judge_budget,
        **({"max_tokens": max_tokens} if max_tokens else {}),
    )
    return {"run_id": result.run_id, "aggregates": result.aggregates, **result.extra}


@app.command("agreement")
def agreement_cmd(
    judge_a: Annotated[str, typer.Argument(help="a judge run id, or a FastChat judgment .jsonl file")],
    judge_b: Annotated[str, typer.Argument(help="another judge run id or judgment file (the reference)")],
    data_dir: Annotated[Path | None, typer.Option(help="MT-Bench folder, for categories of judgment files")] = None,
    model: Annotated[str | None, typer.Option(help="only the judgments of this model")] = None,
    metric: Annotated[str, typer.Option(help="the per-row score compared")] = "score",
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """How far two judges agree: correlations, exact and within-one agreement, per category."""
    from hyouka.judge.agreement import compare_judges
    from hyouka.store.store import RunNotFoundError, Store

    try:
        report = compare_judges(judge_a, judge_b, store=Store(store), metric=metric, data_dir=data_dir, model=model)
    except (RunNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
        return
    if format != "table":
        emit(report.to_dict(), format)
        return
    columns = ("items", "n", "pearson", "spearman", "kendall", "exact", "within 1", "mean A", "mean B")
    table = TextTable(columns, title=f"agreement of {clean(judge_a)} with {clean(judge_b)}", right=columns[1:])
    for label, r in [("all", report), *report.per_category.items()]:
        table.add_row(label, str(r.n), fmt(r.pearson, 3), fmt(r.spearman, 3), fmt(r.kendall, 3), fmt(r.exact, 3),
                      fmt(r.within_one, 3), fmt(r.mean_a, 2), fmt(r.mean_b, 2))
    table.print()
    if report.note:
        err.print(f"[yellow]note:[/] {escape(report.note)}")
