"""End to end on a tiny transformers model: JGLUE through the hf: and openai: backends, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hyouka
from hyouka.cli import app
from hyouka.models.hf import HFModel
from hyouka.store.store import Store
from hyouka.testing.openai_server import fail_matching, serve_openai

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_hf(tiny_model_dir: Path) -> HFModel:
    return HFModel(str(tiny_model_dir), dtype="float32", device="cpu")


def _direct_logprobs(model: torch.nn.Module, tokenizer, pairs: list[tuple[str, str]]) -> list[float]:
    """Reference: a plain forward pass of each joint text (right-padded into one batch, so
    padding never precedes a scored token), summed over the continuation's tokens."""
    rows, firsts = [], []
    for context, continuation in pairs:
        encoded = tokenizer(context + continuation, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        firsts.append(next(i for i, (start, end) in enumerate(offsets) if end > len(context) and end > start))
        rows.append(encoded["input_ids"])
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits.float()
    out = []
    for b, (row, first) in enumerate(zip(rows, firsts, strict=True)):
        positions = torch.arange(first - 1, len(row) - 1)
        targets = torch.tensor(row[first:])
        out.append(float(torch.log_softmax(logits[b, positions], dim=-1)[torch.arange(len(targets)), targets].sum()))
    return out


def test_full_jcommonsenseqa_loglikelihoods_match_transformers(
    tiny_model_dir: Path, tiny_hf: HFModel, jglue_dir: Path, store: Store, tmp_path: Path
) -> None:
    result = hyouka.run(tiny_hf, "jcommonsenseqa", data_dir=jglue_dir, store=store, cache=tmp_path / "c.sqlite")
    run = result["jcommonsenseqa"]
    assert run.n_samples == 1119 and run.aggregates["acc"]["n_scored"] == 1119
    samples = store.samples(run.run_id)
    assert len(samples) == 1119 and all(s["status"] == "ok" for s in samples)

    reference = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs = [(s["prompt"], r["continuation"]) for s in samples for r in s["requests"]]
    recorded = [logprob for s in samples for logprob in s["details"]["logprobs"]]
    assert len(pairs) == len(recorded) == 5 * 1119
    worst = 0.0
    for start in range(0, len(pairs), 80):
        direct = _direct_logprobs(reference, tokenizer, pairs[start : start + 80])
        worst = max(worst, *(abs(a - b) for a, b in zip(direct, recorded[start : start + 80], strict=True)))
    assert worst < 1e-4
    accuracy = sum(s["prediction"] == s["reference"] for s in samples) / 1119
    assert run.aggregates["acc"]["value"] == pytest.approx(accuracy)


@pytest.mark.parametrize(
    ("task", "mode", "metric"),
    [
        ("jcommonsenseqa", "generate", "acc"),
        ("jnli", "loglikelihood", "macro_f1"),
        ("jnli", "generate", "balanced_acc"),
        ("jsts", "generate", "format_error_rate"),
        ("jsquad", "generate", "char_f1"),
        ("marc_ja", "loglikelihood", "acc"),
        ("marc_ja", "generate", "format_error_rate"),
    ],
)
def test_every_builtin_task_runs_in_every_mode(
    task: str, mode: str, metric: str, tiny_hf: HFModel, jglue_dir: Path, store: Store, tmp_path: Path
) -> None:
    marc = tmp_path / "marc_ja.jsonl"
    marc.write_text(
        "\n".join(
            json.dumps({"sentence": s, "label": lab}, ensure_ascii=False)
            for s, lab in [("とても良い商品でした", "positive"), ("二度と買いません", "negative"),
                           ("期待以上の品質", "positive"), ("すぐに壊れた", "negative")] * 3
        ),
        encoding="utf-8",
    )
    result = hyouka.run(tiny_hf, task, mode=mode, num_fewshot=1, limit=6, data_dir=jglue_dir,
                        data_files={"marc_ja": marc}, store=store, cache=False, max_tokens=8)
    run = result[task]
    assert run.mode == mode
    agg = run.aggregates[metric]
    assert agg["n_total"] == 6
    samples = store.samples(run.run_id)
    assert len(samples) == 6
    if mode == "generate":
        assert all(s["output"] is not None for s in samples)
        assert all(s["status"] in ("ok", "format_error") for s in samples)
        expected_rate = sum(s["status"] == "format_error" for s in samples) / 6
        assert run.aggregates["format_error_rate"]["value"] == pytest.approx(expected_rate)
    else:
        assert all(len(s["details"]["logprobs"]) == len(s["requests"]) for s in samples)


def test_openai_backend_gives_hf_loglikelihoods_end_to_end(
    tiny_hf: HFModel, jglue_dir: Path, store: Store
) -> None:
    direct = hyouka.run(tiny_hf, "jnli", num_fewshot=2, limit=15, data_dir=jglue_dir, store=store, cache=False)
    with serve_openai(tiny_hf, model_name="tiny") as url:
        served = hyouka.run("openai:tiny", "jnli", num_fewshot=2, limit=15, data_dir=jglue_dir, store=store,
                            cache=False, base_url=url)
    a = store.samples(direct["jnli"].run_id)
    b = store.samples(served["jnli"].run_id)
    for x, y in zip(a, b, strict=True):
        assert x["details"]["logprobs"] == pytest.approx(y["details"]["logprobs"], abs=1e-4)
        assert x["prediction"] == y["prediction"]


def test_server_failing_some_requests_leaves_run_complete(jglue_dir: Path, store: Store, tiny_hf: HFModel) -> None:
    with serve_openai(tiny_hf, model_name="tiny", fail=fail_matching("キリン", status=500)) as url:
        result = hyouka.run("openai:tiny", "jnli", mode="generate", limit=10, data_dir=jglue_dir, store=store,
                            cache=False, base_url=url, max_retries=1, max_tokens=4)
    run = result["jnli"]
    samples = store.samples(run.run_id)
    failed = [s for s in samples if s["status"] == "api_error"]
    assert [s["doc"]["sentence1"] for s in failed] and all("キリン" in s["prompt"] for s in failed)
    assert len(samples) == 10 and store.get_run(run.run_id)["status"] == "completed"
    assert run.aggregates["acc"]["n_scored"] == 10 - len(failed) and run.aggregates["acc"]["n_total"] == 10


def test_cli_run_then_leaderboard(tiny_model_dir: Path, jglue_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    env = {"HYOUKA_HOME": str(tmp_path / "home")}
    args = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "jcommonsenseqa,jsts", "--limit", "5",
            "--num-fewshot", "1", "--data-dir", str(jglue_dir), "--store", url, "--dtype", "float32",
            "--output", str(tmp_path / "out.json")]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out.json").read_text())
    assert [r["task"] for r in written["runs"]] == ["jcommonsenseqa", "jsts"]
    board = runner.invoke(app, ["leaderboard", "--store", url, "--format", "json"], env=env)
    (row,) = json.loads(board.stdout)
    assert row["jcommonsenseqa"]["value"] == written["runs"][0]["aggregates"]["acc"]["value"]
    again = runner.invoke(app, args, env=env)  # served from the cache
    assert again.exit_code == 0
    assert json.loads((tmp_path / "out.json").read_text())["runs"][0]["cache_hits"] == 25


def test_cli_resume_by_run_id_calls_only_missing_samples(
    tiny_model_dir: Path, jglue_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'resume.sqlite'}"
    env = {"HYOUKA_HOME": str(tmp_path / "home")}
    spec = f"hf:{tiny_model_dir}"
    result = hyouka.run(spec, "jnli", limit=8, data_dir=jglue_dir, store=url, cache=False, dtype="float32")
    run_id = result["jnli"].run_id
    store = Store(url)
    # as if killed after four samples (and no answer cached): the other records are gone
    with store.session() as s, s.begin():
        from hyouka.store.schema import SampleRow

        s.query(SampleRow).filter(SampleRow.run_id == run_id, SampleRow.sample_index >= 4).delete()
    store.update_run(run_id, status="interrupted")

    out = tmp_path / "resumed.json"
    resumed = CliRunner().invoke(app, ["run", "--resume", run_id[:8], "--store", url, "--output", str(out)], env=env)
    assert resumed.exit_code == 0, resumed.output
    (summary,) = json.loads(out.read_text())["runs"]
    assert summary["run_id"] == run_id and summary["resumed"]
    assert summary["model_calls"] == 4 * 3  # only the four missing samples, three choices each
    assert store.get_run(run_id)["status"] == "completed"
    assert [s["sample_index"] for s in store.samples(run_id)] == list(range(8))
