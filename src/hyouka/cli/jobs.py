"""Job commands: ``hyouka submit``, ``hyouka agent``, ``hyouka jobs [cancel|retry|logs]``."""

# no `from __future__ import annotations`: Typer would compile every string annotation at each start
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hyouka.cli._app import (
    Format,
    JudgeBaseUrlOpt,
    JudgeMaxTokensOpt,
    StoreOpt,
    emit,
    err,
    escape,
    fail,
    judge_backend_options,
    parse_data_files,
)
from hyouka.cli.text_table import TextTable, clean

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS

jobs_app = typer.Typer(help="Evaluation jobs in the queue: list them, cancel, retry, read their logs.",
                       invoke_without_command=True)
app.add_typer(jobs_app, name="jobs")

QueueOpt = Annotated[str, typer.Option("--queue", "-q", help="the queue (agents of a queue run its jobs)")]
JobIdArg = Annotated[str, typer.Argument(help="job id or unique prefix (`hyouka jobs` lists them)")]


def _options(items: list[str]) -> dict[str, Any]:
    from hyouka.yamlio import load_yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--option takes KEY=VALUE (a backend option), got {item!r}")
        out[key.strip()] = load_yaml(value) if value else value
    return out


@app.command()
def submit(
    model: Annotated[str | None, typer.Option("--model", "-m", help="the model to evaluate (as for `hyouka run`)")]
    = None,
    tasks: Annotated[str | None, typer.Option("--tasks", "-t", help="comma-separated tasks or suites")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="jobs.yaml: a grid of models × tasks × settings")]
    = None,
    queue: QueueOpt = "default",
    priority: Annotated[int, typer.Option(help="higher runs first")] = 0,
    gpus: Annotated[float | None, typer.Option(
        "--gpus", min=0, help="GPUs the job needs (default: 1 per tensor-parallel rank for hf:/vllm: on a queue "
                              "named like gpu, else 0)")] = None,
    cpus: Annotated[float, typer.Option("--cpus", min=0, help="CPUs the job needs")] = 1.0,
    force: Annotated[bool, typer.Option("--force", help="queue the spec again as a new job even if it was "
                                                        "submitted before")] = False,
    mode: Annotated[str, typer.Option(help="auto, loglikelihood or generate")] = "auto",
    num_fewshot: Annotated[int | None, typer.Option("--num-fewshot", "-k", min=0, help="few-shot examples")] = None,
    prompt_family: Annotated[str | None, typer.Option("--prompt-family", help="plain, alpaca, raw or llm-jp-eval")]
    = None,
    seed: Annotated[int, typer.Option(help="few-shot choice, sampling and bootstrap seed")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="the first N documents of each task")] = None,
    data_dir: Annotated[str | None, typer.Option(help="JGLUE datasets/ folder on the agent's machine "
                                                      "(default: its HYOUKA_JGLUE_DIR)")] = None,
    data_file: Annotated[list[str], typer.Option(help="a task's data file on the agent's machine, TASK=PATH")]
    = [],  # noqa: B006
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="most tokens per answer")] = None,
    chat: Annotated[bool, typer.Option(help="send generation prompts as chat messages")] = False,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the key on the agent")]
    = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="openai: the tokenizer for log-likelihoods")] = None,
    dtype: Annotated[str | None, typer.Option(help="hf: auto, float32, bfloat16, float16")] = None,
    device: Annotated[str | None, typer.Option(help="hf: auto, cpu, cuda")] = None,
    revision: Annotated[str | None, typer.Option(help="hf:/vllm: model revision")] = None,
    option: Annotated[list[str], typer.Option("--option", "-o", help="any other backend option, KEY=VALUE "
                                                                     "(repeatable; never a secret)")] = [],  # noqa: B006
    judge: Annotated[str | None, typer.Option("--judge", help="the judge of judge-graded tasks")] = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_max_tokens: JudgeMaxTokensOpt = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", min=0, help="USD ceiling of the job")] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="price table YAML, frozen into the job")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="make every call again (no response cache)")] = False,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """Queue an evaluation (or a grid of them from --file); the same spec again is the same job."""
    from hyouka.jobs.grid import load_grid
    from hyouka.jobs.spec import Placement, frozen_prices, make_spec
    from hyouka.jobs.submit import submit_all

    try:
        if file is not None:
            if model or tasks:
                fail("give --file, or --model and --tasks, not both")
            specs = load_grid(file)
        else:
            if not model or not tasks:
                fail("give --model and --tasks (or --file jobs.yaml)")
            model_options = {"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency,
                             "tokenizer": tokenizer, "dtype": dtype, "device": device, "revision": revision,
                             **_options(option)}
            spec = make_spec(model=model, model_options=model_options, tasks=tasks, mode=mode, num_fewshot=num_fewshot,
                             prompt_family=prompt_family, seed=seed, limit=limit, data_dir=data_dir,
                             data_files=parse_data_files(data_file), max_tokens=max_tokens, chat=chat,
                             max_cost=max_cost, cache=not no_cache, judge=judge,
                             judge_options=judge_backend_options(judge_base_url), judge_max_tokens=judge_max_tokens,
                             prices=frozen_prices(prices))
            fields: dict[str, Any] = {"queue": queue, "priority": priority, "num_cpus": cpus}
            if gpus is not None:
                fields["num_gpus"] = gpus
            specs = [(spec, Placement(**fields))]
        submitted = submit_all(specs, store=store, force=force)
    except (ValueError, LookupError, OSError) as exc:
        fail(str(exc))
        return
    rows = [{**_public(job), "new": new} for job, new in submitted]
    if format != "table":
        emit(rows, format)
        return
    for row in rows:
        what = "queued" if row["new"] else f"already submitted ({row['state']}; --force queues it again)"
        sys.stdout.write(f"job {row['id']}: {clean(row['model'])} on {row['tasks']} in queue {row['queue']} "
                         f"— {what}\n")


@app.command()
def agent(
    queue: QueueOpt = "default",
    max_jobs: Annotated[int, typer.Option("--max-jobs", min=1, help="jobs run at once")] = 1,
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", min=1, help="a job's lease: without a "
                                                 "heartbeat for this long, another agent takes the job over")]
    = 60.0,
    until_empty: Annotated[bool, typer.Option("--until-empty", help="stop once the queue holds no job this "
                                                                    "machine can run")] = False,
    ray: Annotated[str | None, typer.Option("--ray", help="run each job as a Ray task: auto or ray://head:10001 "
                                                          "(token authentication on)")] = None,
    gpus: Annotated[float | None, typer.Option("--gpus", min=0, help="GPUs this machine offers (default: "
                                                                     "detected)")] = None,
    cpus: Annotated[float | None, typer.Option("--cpus", min=0, help="CPUs this machine offers (default: "
                                                                     "detected)")] = None,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.05, help="how often an idle agent looks "
                                                                                 "for jobs")] = 1.0,
    store: StoreOpt = None,
) -> None:
    """Run jobs of a queue until stopped (SIGTERM or Ctrl-C hands running jobs back, their samples kept)."""
    import time

    from hyouka.jobs.agent import Agent, LocalRunner
    from hyouka.jobs.resources import machine_capacity

    def say(text: str) -> None:
        err.print(f"{time.strftime('%H:%M:%S')} {escape(text)}", soft_wrap=True, highlight=False)

    try:
        if ray is not None:
            from hyouka.jobs.ray_cluster import RayRunner

            runner: Any = RayRunner(ray)
        else:
            runner = LocalRunner(machine_capacity(gpus, cpus))
        worker = Agent(store, queue, max_jobs=max_jobs, lease_seconds=lease_seconds, until_empty=until_empty,
                       poll_seconds=poll_seconds, runner=runner, say=say)
    except (ValueError, RuntimeError, ImportError, OSError) as exc:
        fail(str(exc))
        return
    say(f"{worker.id} on queue {queue}: {runner.capacity.describe()}, up to {max_jobs} job(s) at once"
        + (" on Ray" if ray is not None else ""))
    report = worker.run()
    say(f"stopped ({report.stopped_by}): {len(report.succeeded)} succeeded, {len(report.failed)} failed, "
        f"{len(report.handed_back)} handed back")
    if report.stopped_by and report.stopped_by.startswith("stopped by SIG"):
        import signal

        raise typer.Exit(code=128 + signal.Signals[report.stopped_by.split()[-1]].value)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    """A job's row for output (its spec holds no secret: submission refuses them)."""
    return {**job, "summary": job.get("summary") or {}, "run_ids": job.get("run_ids") or []}


def _age(moment: Any) -> str:
    from hyouka.store.ownership import heartbeat_age_s

    age = heartbeat_age_s(moment)
    return "" if age is None else f"{age:.0f} s ago"


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="only this queue's jobs")] = None,
    state: Annotated[str | None, typer.Option(help="only jobs in this state (queued, leased, running, "
                                                  "succeeded, failed, cancelled)")] = None,
    store: StoreOpt = None,
    format: Format = "table",
) -> None:
    """List jobs: state, queue, attempts, the agent holding each and its last heartbeat, progress, runs."""
    if ctx.invoked_subcommand is not None:
        return
    from hyouka.store.queue import JobQueue
    from hyouka.store.store import Store

    rows = [_public(j) for j in JobQueue(Store(store)).list(queue=queue, states=[state] if state else None)]
    if format != "table":
        emit(rows, format)
        return
    table = TextTable(("job", "state", "queue", "pri", "model", "tasks", "tries", "agent", "heartbeat", "progress",
                       "runs / error"), right=("pri", "tries"))
    for r in rows:
        outcome = f"{r['phase']}: {r['error'].splitlines()[0]}" if r["error"] else " ".join(r["run_ids"] or [])
        table.add_row(r["id"], r["state"], r["queue"], r["priority"], r["model"], r["tasks"], r["attempts"],
                      r["agent"] or "", _age(r["heartbeat_at"]) if r["agent"] else "", r["progress"] or "", outcome)
    table.print()


def _change(job_id: str, store: str | None, action: str) -> dict[str, Any]:
    """``cancel`` or ``retry`` a job, or fail with the queue's reason."""
    from hyouka.store.queue import JobQueue
    from hyouka.store.store import Store

    try:
        return getattr(JobQueue(Store(store)), action)(job_id)
    except (LookupError, ValueError) as exc:
        fail(str(exc))
        raise  # fail() exits; this line is never reached


@jobs_app.command("cancel")
def cancel_cmd(job_id: JobIdArg, store: StoreOpt = None) -> None:
    """Cancel a job; an agent running it stops at its next heartbeat, keeping the finished samples."""
    job = _change(job_id, store, "cancel")
    sys.stdout.write(f"job {job['id']} cancelled\n")


@jobs_app.command("retry")
def retry_cmd(job_id: JobIdArg, store: StoreOpt = None) -> None:
    """Queue a failed or cancelled job again; its run resumes, paying only for what is missing."""
    job = _change(job_id, store, "retry")
    sys.stdout.write(f"job {job['id']} queued again in {job['queue']}\n")


@jobs_app.command("logs")
def logs_cmd(job_id: JobIdArg, store: StoreOpt = None, format: Format = "table") -> None:
    """What happened to a job (submitted, leased, expired, finished…) and the runs it made."""
    from hyouka.store.queue import JobQueue
    from hyouka.store.store import Store

    the_store = Store(store)
    queue = JobQueue(the_store)
    try:
        job = queue.get(job_id)
    except LookupError as exc:
        fail(str(exc))
        return
    events = queue.events(job["id"])
    runs = [{k: r.get(k) for k in ("id", "task", "status", "n_samples", "error", "owner", "duration_s")}
            for r in the_store.list_runs() if r.get("job_id") == job["id"]]
    if format != "table":
        emit({"job": _public(job), "events": events, "runs": runs}, format, lines=events)
        return
    out = [f"job {job['id']}: {clean(job['model'])} on {job['tasks']} — {job['state']}"
           + (f" ({job['phase']})" if job["phase"] else "")]
    for e in events:
        out.append(f"{str(e['at'])[:19]}  {e['event']:<13} {clean(e['agent'] or '')}  {clean(e['detail'] or '')}"
                   .rstrip())
    if job["error"]:
        out += ["", "error:", job["error"]]
    for r in runs:
        out.append(f"run {r['id']} ({r['task']}): {r['status']}" + (f" — {clean(r['error'])}" if r["error"] else ""))
    sys.stdout.write("\n".join(out) + "\n")
