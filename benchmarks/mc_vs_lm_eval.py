"""Multiple-choice scoring: hyouka's hf: backend vs lm-evaluation-harness, measured in one run.

Builds one tiny random Llama (fixed seed, ~5M parameters, 8k byte-level BPE vocabulary trained on
JGLUE), builds the JCommonsenseQA valid prompts (3-shot, with ``hyouka.tasks``) and scores the
same (context, choice) strings with

* lm-evaluation-harness (``HFLM``, batch size 16, fp32, through ``simple_evaluate`` with the task
  YAML in ``benchmarks/lm_eval_tasks/``, which loads the JSON-lines file written here),
* hyouka's ``hf:`` backend in its default shared-prefix mode, and in its naive mode.

Each tool runs in its own subprocess (so peak memory is its own); wall times cover scoring only
(model loading excluded): lm-eval's ``HFLM.loglikelihood`` (the harness total is printed too) and
hyouka's ``HFModel.loglikelihood``. The last line is
``speedup=<lm-eval wall / hyouka wall> differing=<n> max_diff=<x>``.

    python benchmarks/mc_vs_lm_eval.py [--data DIR] [--limit N] [--batch-size 16]

The data directory (JGLUE v1.3 layout) comes from ``--data``, else ``$HYOUKA_JGLUE_DIR``, else
``../shared/data/jglue-v1.3`` relative to the repository root. Needs ``pip install lm-eval``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TASK_YAML = Path(__file__).resolve().parent / "lm_eval_tasks" / "jcommonsenseqa_hyouka.yaml"


QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


def default_data_dir() -> Path:
    if os.environ.get("HYOUKA_JGLUE_DIR"):
        return Path(os.environ["HYOUKA_JGLUE_DIR"])
    if os.environ.get("HYOUKA_SHARED_DATA"):
        return Path(os.environ["HYOUKA_SHARED_DATA"]) / "jglue-v1.3"
    return REPO.parent / "shared" / "data" / "jglue-v1.3"


# -- memory -------------------------------------------------------------------------------------
def reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process (Linux); no-op elsewhere."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mib(field: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` of this process in MiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(fn: Any) -> tuple[Any, float, dict[str, float | None]]:
    """Run ``fn()``; return its result, wall seconds and memory (baseline, peak, peak - baseline)."""
    import gc

    gc.collect()
    reset_peak_rss()
    base = rss_mib("VmRSS")
    start = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    peak = rss_mib("VmHWM")
    growth = peak - base if peak is not None and base is not None else None
    return out, wall, {"rss_before_mib": base, "peak_rss_mib": peak, "peak_growth_mib": growth}


# -- workers (run in subprocesses) ---------------------------------------------------------------
def worker_lm_eval(model_dir: str, data_file: str, batch_size: int) -> dict[str, Any]:
    import yaml
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    config = yaml.safe_load(TASK_YAML.read_text(encoding="utf-8"))
    config["dataset_kwargs"]["data_files"]["validation"] = data_file
    lm = HFLM(pretrained=model_dir, batch_size=batch_size, device="cpu", dtype="float32")
    timing = time_scoring(lm)
    results, harness_wall, memory = measure(
        lambda: simple_evaluate(model=lm, tasks=[config], log_samples=True, verbosity="ERROR")
    )
    samples = sorted(results["samples"][config["task"]], key=lambda s: s["doc_id"])
    return {
        "wall": timing["scoring"],
        "harness_wall": harness_wall,
        "memory": memory,
        "arguments": [[list(a) for a in s["arguments"]] for s in samples],
        "logprobs": [[float(r[0][0]) for r in s["resps"]] for s in samples],
    }


def worker_hyouka(model_dir: str, data_file: str, scoring: str) -> dict[str, Any]:
    from hyouka.models.base import LoglikelihoodRequest, collect
    from hyouka.models.hf import HFModel

    rows = [json.loads(line) for line in Path(data_file).read_text(encoding="utf-8").splitlines()]
    requests = [LoglikelihoodRequest(row["prompt"], c) for row in rows for c in row["choices"]]
    model = HFModel(model_dir, device="cpu", dtype="float32", scoring=scoring)
    model.load()  # as HFLM loads in its constructor: loading stays outside the timing and the memory growth
    responses, wall, memory = measure(lambda: collect(model.loglikelihood(requests), len(requests)))
    flat = [r.logprob for r in responses]
    out, i = [], 0
    for row in rows:
        out.append(flat[i : i + len(row["choices"])])
        i += len(row["choices"])
    return {"wall": wall, "memory": memory, "logprobs": out}


def run_worker(kind: str, *args: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_path = fh.name
    env = {**os.environ, **QUIET_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, __file__, "--worker", kind, "--result", result_path, *args]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-5000:])
            raise SystemExit(f"the {kind} worker failed (exit {proc.returncode})")
        return json.loads(Path(result_path).read_text(encoding="utf-8"))
    finally:
        os.unlink(result_path)


# -- the comparison ------------------------------------------------------------------------------
def build_prompts(data_dir: Path, limit: int | None, num_fewshot: int, out: Path) -> int:
    """Write the 3-shot JCommonsenseQA valid prompts (built by hyouka.tasks) as JSON lines."""
    from hyouka.tasks.registry import load_task
    from hyouka.tasks.task import Task

    task = Task(load_task("jcommonsenseqa"), data_dir=data_dir, num_fewshot=num_fewshot)
    docs = task.docs()[:limit] if limit else task.docs()
    with out.open("w", encoding="utf-8") as fh:
        for doc in docs:
            requests = task.requests(doc, "loglikelihood")
            contexts = {r.context for r in requests}
            assert len(contexts) == 1, "one prompt per question"
            row = {"prompt": requests[0].context, "choices": [r.continuation for r in requests]}
            row["label"] = task.gold(doc)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(docs)


def time_scoring(lm: Any) -> dict[str, float]:
    """Wrap an lm-eval model's ``loglikelihood`` so that its wall time adds up in the returned dict's "scoring"."""
    timing: dict[str, float] = {}
    scoring = lm.loglikelihood

    def timed_loglikelihood(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return scoring(*args, **kwargs)
        finally:
            timing["scoring"] = timing.get("scoring", 0.0) + time.perf_counter() - start

    lm.loglikelihood = timed_loglikelihood
    return timing


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def fmt_mem(memory: dict[str, float | None]) -> str:
    peak, growth = memory.get("peak_rss_mib"), memory.get("peak_growth_mib")
    if peak is None:
        return "n/a"
    return f"peak RSS {peak:.0f} MiB (+{growth:.0f} MiB while scoring)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="JGLUE v1.3 directory")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N questions")
    parser.add_argument("--num-fewshot", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval batch size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny model")
    parser.add_argument("--skip-naive", action="store_true", help="do not run hyouka's naive mode")
    parser.add_argument("--worker", choices=["lm_eval", "hyouka"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.worker == "lm_eval":
            model_dir, data_file, batch_size = args.worker_args
            result = worker_lm_eval(model_dir, data_file, int(batch_size))
        else:
            result = worker_hyouka(*args.worker_args)
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")
        return

    data_dir = args.data or default_data_dir()
    if not data_dir.is_dir():
        parser.error(f"JGLUE data not found at {data_dir}; pass --data or set HYOUKA_JGLUE_DIR")
    os.environ.update(QUIET_ENV)
    sys.path.insert(0, str(REPO / "src"))
    from hyouka.testing.tiny import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="hyouka-mc-bench-") as tmp:
        tmp_path = Path(tmp)
        model_dir = build_tiny_model(tmp_path / "tiny-llama", corpus_dir=data_dir, arch="llama", seed=args.seed)
        data_file = tmp_path / "jcommonsenseqa-prompts.jsonl"
        n_docs = build_prompts(data_dir, args.limit, args.num_fewshot, data_file)
        rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines()]
        n_requests = sum(len(r["choices"]) for r in rows)
        n_params = _count_params(model_dir)
        print(f"model: tiny Llama, {n_params / 1e6:.1f}M parameters, seed {args.seed}")
        print(f"data: JCommonsenseQA valid, {n_docs} questions, {n_requests} choices, {args.num_fewshot}-shot")

        lm_eval = run_worker("lm_eval", str(model_dir), str(data_file), str(args.batch_size))
        hyouka = run_worker("hyouka", str(model_dir), str(data_file), "shared_prefix")
        naive = None if args.skip_naive else run_worker("hyouka", str(model_dir), str(data_file), "naive")

    expected_args = [[[r["prompt"], c] for c in r["choices"]] for r in rows]
    if lm_eval["arguments"] != expected_args:
        raise SystemExit("lm-eval scored different strings than hyouka; the comparison would be meaningless")

    def compare(other: dict[str, Any]) -> tuple[int, float]:
        differing = sum(argmax(a) != argmax(b) for a, b in zip(lm_eval["logprobs"], other["logprobs"], strict=True))
        diff = max(
            abs(x - y)
            for a, b in zip(lm_eval["logprobs"], other["logprobs"], strict=True)
            for x, y in zip(a, b, strict=True)
        )
        return differing, diff

    differing, max_diff = compare(hyouka)
    speedup = lm_eval["wall"] / hyouka["wall"]
    print(
        f"lm-eval (HFLM, batch {args.batch_size}): {lm_eval['wall']:.1f} s scoring "
        f"({lm_eval['harness_wall']:.1f} s in simple_evaluate), {fmt_mem(lm_eval['memory'])}"
    )
    print(f"hyouka shared-prefix: {hyouka['wall']:.1f} s, {fmt_mem(hyouka['memory'])}")
    if naive is not None:
        naive_differing, naive_diff = compare(naive)
        print(
            f"hyouka naive: {naive['wall']:.1f} s, {fmt_mem(naive['memory'])}; "
            f"differing={naive_differing} max_diff={naive_diff:.2e} vs lm-eval"
        )
        print(f"shared-prefix speedup over naive: {naive['wall'] / hyouka['wall']:.2f}x")
    print(f"speedup={speedup:.2f} differing={differing} max_diff={max_diff:.2e}")


def _count_params(model_dir: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as fh:
        return sum(math.prod(fh.get_slice(key).get_shape()) for key in fh.keys())  # noqa: SIM118


if __name__ == "__main__":
    main()
