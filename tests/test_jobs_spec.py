"""Job specs: secrets refused, content hashes that dedupe, --force, jobs.yaml grids, the CLI's listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyouka.cli import app
from hyouka.jobs.grid import load_grid
from hyouka.jobs.secrets import SecretInSpecError
from hyouka.jobs.spec import JobSpecError, Placement, make_spec
from hyouka.jobs.submit import submit
from hyouka.store.queue import JobQueue
from hyouka.store.store import Store

runner = CliRunner()
KEY = "sk-proj-" + "Zq8" * 12  # a made-up key in OpenAI's format


@pytest.mark.parametrize(("options", "named"), [
    ({"api_key": "anything"}, "model_options.api_key"),
    ({"headers": {"Authorization": "x"}}, "model_options.headers.Authorization"),
    ({"access-token": "abc"}, "model_options.access-token"),
    ({"dbPassword": "hunter2"}, "model_options.dbPassword"),
    ({"extra": KEY}, "model_options.extra"),
    ({"extra_headers": {"x": "Bearer abcdefghijkl"}}, "model_options.extra_headers.x"),
    ({"base_url": "https://user:pw@example.test/v1"}, "model_options.base_url"),
    ({"base_url": "https://example.test/v1?api-key=abc"}, "model_options.base_url"),
    ({"api_key_env": KEY}, "model_options.api_key_env"),  # a key where a variable's name belongs
])
def test_secret_looking_options_are_refused_by_name(options: dict, named: str) -> None:
    with pytest.raises(SecretInSpecError) as caught:
        make_spec(model="openai:gpt-4o-mini", model_options=options, tasks="jnli")
    message = str(caught.value)
    assert named in message and "environment" in message
    assert KEY not in message and "hunter2" not in message  # the error never repeats the value


def test_options_that_only_sound_like_secrets_are_kept() -> None:
    spec = make_spec(model="openai:m", tasks="jnli", max_tokens=8, judge_max_tokens=16,
                     model_options={"api_key_env": "MY_KEY", "tokenizer": "org/tok", "max_model_len": 512,
                                    "base_url": "http://127.0.0.1:8000/v1"})
    assert spec.model_options["api_key_env"] == "MY_KEY" and spec.model_options["tokenizer"] == "org/tok"


def test_the_judge_and_its_options_are_checked_too() -> None:
    with pytest.raises(SecretInSpecError, match=r"judge_options\.api_key"):
        make_spec(model="openai:m", tasks="ja_mt_bench", judge="openai:gpt-4o", judge_options={"api_key": "k"})


def test_names_are_refused_at_submission_not_on_an_agent() -> None:
    with pytest.raises(ValueError, match="nosuchtask"):
        make_spec(model="openai:m", tasks="nosuchtask")
    with pytest.raises(ValueError, match="backend"):
        make_spec(model="gpt-4o", tasks="jnli")
    with pytest.raises(JobSpecError, match="num_fewshot"):
        make_spec(model="openai:m", tasks="jnli", num_fewshot=-1)
    with pytest.raises(JobSpecError, match="judge"):
        make_spec(model="openai:m", tasks="ja_mt_bench")


def test_the_hash_covers_what_changes_a_result_and_nothing_else(tmp_path: Path) -> None:
    base = make_spec(model="openai:m", tasks="jnli,jcommonsenseqa", num_fewshot=3)
    assert base.content_hash() == make_spec(model="openai:m", tasks=["jnli", "jcommonsenseqa"],
                                            num_fewshot=3).content_hash()
    assert base.content_hash() != make_spec(model="openai:m", tasks="jnli,jcommonsenseqa", num_fewshot=2).content_hash()
    assert base.manifest()["hyouka_version"]
    prices = tmp_path / "prices.yaml"
    prices.write_text("version: v1\nmodels:\n  m: {input: 1.0, output: 2.0}\n", encoding="utf-8")
    from hyouka.jobs.spec import frozen_prices

    priced = make_spec(model="openai:m", tasks="jnli,jcommonsenseqa", num_fewshot=3, prices=frozen_prices(prices))
    assert priced.content_hash() != base.content_hash()
    prices.write_text("version: v2\nmodels:\n  m: {input: 9.0, output: 9.0}\n", encoding="utf-8")
    # the spec keeps the table it was submitted with, whatever the file says later
    assert priced.price_table().lookup("openai:m").price.input == 1.0


def test_the_same_spec_twice_is_one_job_and_force_makes_a_new_one(store: Store) -> None:
    spec = make_spec(model="openai:m", tasks="jnli", limit=5)
    first, new = submit(spec, Placement(queue="cpu"), store=store)
    again, new_again = submit(make_spec(model="openai:m", tasks="jnli", limit=5), Placement(queue="cpu"), store=store)
    assert new and not new_again and again["id"] == first["id"]
    forced, forced_new = submit(spec, Placement(queue="cpu"), store=store, force=True)
    assert forced_new and forced["id"] != first["id"] and forced["submission"] == 2
    assert forced["spec_hash"] == first["spec_hash"]
    assert len(JobQueue(store).list()) == 2


def test_local_models_on_a_gpu_queue_need_gpus_endpoints_do_not(store: Store) -> None:
    hf, _ = submit(make_spec(model="hf:org/model", tasks="jnli"), Placement(queue="gpu"), store=store)
    vllm, _ = submit(make_spec(model="vllm:org/model", tasks="jnli", model_options={"tensor_parallel_size": 2}),
                     Placement(queue="gpu"), store=store)
    api, _ = submit(make_spec(model="openai:m", tasks="jnli"), Placement(queue="gpu"), store=store)
    cpu, _ = submit(make_spec(model="hf:org/model", tasks="jnli", limit=3), Placement(queue="cpu"), store=store)
    # the same spec on another queue is the job already there (placement is not part of the spec)
    assert submit(make_spec(model="hf:org/model", tasks="jnli"), Placement(queue="cpu"), store=store)[0]["id"] \
        == hf["id"]
    assert (hf["num_gpus"], vllm["num_gpus"], api["num_gpus"], cpu["num_gpus"]) == (1, 2, 0, 0)
    queue = JobQueue(store)
    # a machine without a GPU is never leased a job that needs one
    assert queue.lease("gpu", "a", lease_seconds=10, gpus=0)["id"] == api["id"]
    assert queue.lease("gpu", "a", lease_seconds=10, gpus=0) is None
    assert queue.lease("gpu", "b", lease_seconds=10, gpus=1)["id"] == hf["id"]
    assert [j["id"] for j in queue.unfit("gpu", gpus=1, cpus=4)] == [vllm["id"]]


def test_a_grid_is_models_times_tasks_times_settings(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text("models:\n  my-model: {input: 1.0, output: 1.0}\n", encoding="utf-8")
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "queue: gpu\npriority: 5\n"
        "models:\n  - hf:org/a\n  - {model: 'openai:my-model', options: {base_url: 'http://127.0.0.1:1/v1', "
        "api_key_env: MY_KEY}}\n"
        "tasks: [jnli, 'jcommonsenseqa,marc_ja']\n"
        "settings:\n  num_fewshot: [0, 3]\n  mode: generate\n  limit: 10\n"
        "prices: prices.yaml\n", encoding="utf-8")
    jobs = load_grid(path)
    assert len(jobs) == 2 * 2 * 2
    cells = {(s.model, s.tasks, s.num_fewshot) for s, _ in jobs}
    assert len(cells) == 8 and ("openai:my-model", ("jcommonsenseqa", "marc_ja"), 3) in cells
    assert all(s.mode == "generate" and s.limit == 10 and s.prices for s, _ in jobs)
    assert {p.queue for _, p in jobs} == {"gpu"} and {p.priority for _, p in jobs} == {5}
    assert len({s.content_hash() for s, _ in jobs}) == 8


@pytest.mark.parametrize(("body", "message"), [
    ("models: [openai:m]\ntasks: [jnli]\nsetings: {}\n", "setings"),
    ("models: [openai:m]\ntasks: [jnli]\nsettings: {fewshot: 3}\n", "settings.fewshot"),
    ("models: [{model: 'openai:m', options: {api_key: abc}}]\ntasks: [jnli]\n", "model_options.api_key"),
    ("models: []\ntasks: [jnli]\n", "models"),
])
def test_a_bad_grid_names_the_file_and_the_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_grid(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_the_cli_refuses_a_secret_and_lists_jobs_without_any(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = f"sqlite:///{tmp_path / 'results.sqlite'}"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("MY_KEY", KEY)
    refused = runner.invoke(app, ["submit", "--model", "openai:m", "--tasks", "jnli", "--option", f"api_key={KEY}",
                                  "--store", store])
    assert refused.exit_code == 2 and "model_options.api_key" in refused.output and KEY not in refused.output
    token = runner.invoke(app, ["submit", "--model", "openai:m", "--tasks", "jnli", "--base-url",
                                f"http://127.0.0.1:9/v1?token={KEY}", "--store", store])
    assert token.exit_code == 2 and KEY not in token.output
    ok = runner.invoke(app, ["submit", "--model", "openai:m", "--tasks", "jnli", "--api-key-env", "MY_KEY",
                             "--queue", "cpu", "--priority", "5", "--store", store, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    (job,) = json.loads(ok.stdout)
    assert job["new"] and job["queue"] == "cpu" and job["priority"] == 5
    again = runner.invoke(app, ["submit", "--model", "openai:m", "--tasks", "jnli", "--api-key-env", "MY_KEY",
                                "--queue", "cpu", "--priority", "5", "--store", store])
    assert again.exit_code == 0 and "already submitted" in again.output and job["id"] in again.output
    listed = runner.invoke(app, ["jobs", "--store", store, "--format", "json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["id"] == job["id"] and row["state"] == "queued"
    assert row["spec"]["model_options"]["api_key_env"] == "MY_KEY"
    assert KEY not in listed.stdout
    table = runner.invoke(app, ["jobs", "--store", store, "--queue", "cpu"])
    assert job["id"] in table.output and "queued" in table.output
    cancelled = runner.invoke(app, ["jobs", "cancel", job["id"][:6], "--store", store])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    twice = runner.invoke(app, ["jobs", "cancel", job["id"], "--store", store])
    assert twice.exit_code == 2 and "cancelled already" in twice.output
    retried = runner.invoke(app, ["jobs", "retry", job["id"], "--store", store])
    assert retried.exit_code == 0 and "queued again" in retried.output
    logs = runner.invoke(app, ["jobs", "logs", job["id"], "--store", store])
    assert [w for w in ("submitted", "cancelled", "retried") if w in logs.output] == ["submitted", "cancelled",
                                                                                       "retried"]
