"""A re-run served from the response cache against the first run, end to end through ``hyouka.run``.

Builds the tiny Llama (fixed seed) once. Each round runs in a fresh Python process, as a user's
first run does: it loads the model (outside all timings), scores JCommonsenseQA valid (3-shot,
log-likelihood) with an empty cache and store, and runs the identical configuration again
``--reruns`` times in the same process: every answer comes from the cache, and each re-run
still writes its 1,119 sample records and aggregates. A fresh process per round keeps a round's
first run from finding the process already warmed by an earlier round (torch kernels, the
collector's old generations), which a real first run never does. Both sides of the ratio are
medians over the rounds, on a shared, noisy machine; the mean re-run, which counts the full
garbage collections that now and then land in one (a pass over torch's ~400k objects), is
printed too. The last line prints ``speedup=<median first wall / median re-run wall>`` (goal:
at least 50)::

    python benchmarks/cache_rerun.py [--data ../shared/data/jglue-v1.3] [--rounds 3] [--reruns 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "jglue-v1.3"


def worker(model_dir: str, data: Path, num_fewshot: int, limit: int | None, reruns: int) -> dict[str, Any]:
    """One round in this process: the first run, then the re-runs; wall seconds of each."""
    import hyouka
    from hyouka.engine.cache import ResponseCache
    from hyouka.models.hf import HFModel
    from hyouka.store.store import Store

    model = HFModel(model_dir, dtype="float32", device="cpu")
    model.load()  # model loading stays outside the timings (it would otherwise fall in the first run)
    options = {"num_fewshot": num_fewshot, "limit": limit, "data_dir": data}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'results.sqlite'}")
        cache = ResponseCache(Path(tmp) / "cache.sqlite")
        start = time.perf_counter()
        first = hyouka.run(model, "jcommonsenseqa", store=store, cache=cache, **options)["jcommonsenseqa"]
        first_wall = time.perf_counter() - start
        walls = []
        for _ in range(reruns):
            start = time.perf_counter()
            again = hyouka.run(model, "jcommonsenseqa", store=store, cache=cache, **options)["jcommonsenseqa"]
            walls.append(time.perf_counter() - start)
            if again.model_calls or again.aggregates["acc"]["value"] != first.aggregates["acc"]["value"]:
                raise SystemExit(f"a re-run called the model {again.model_calls} times or changed accuracy")
        store.close()
        cache.close()
    return {
        "first": first_wall,
        "reruns": walls,
        "model_calls": first.model_calls,
        "cache_hits": again.cache_hits,
        "n_samples": first.n_samples,
    }


def run_round(model_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`worker` in a fresh interpreter; its result is the last line it prints."""
    cmd = [sys.executable, __file__, "--worker", model_dir, "--data", str(args.data),
           "--num-fewshot", str(args.num_fewshot), "--reruns", str(args.reruns)]
    if args.limit is not None:
        cmd += ["--limit", str(args.limit)]
    env = {**os.environ, "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"a round failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("HYOUKA_JGLUE_DIR", DEFAULT_DATA)))
    parser.add_argument("--num-fewshot", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes, each a first run and its re-runs")
    parser.add_argument("--reruns", type=int, default=5, help="re-runs per round")
    parser.add_argument("--worker", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.num_fewshot, args.limit, args.reruns)))
        return
    if not args.data.is_dir():
        parser.error(f"JGLUE data not found at {args.data}; pass --data or set HYOUKA_JGLUE_DIR")

    from hyouka.testing.tiny import build_tiny_model

    firsts: list[float] = []
    reruns: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_model(Path(tmp) / "tiny", corpus_dir=args.data))
        for round_no in range(args.rounds):
            result = run_round(model_dir, args)
            firsts.append(result["first"])
            reruns.extend(result["reruns"])
            print(f"round {round_no + 1}: first {result['first']:.2f} s ({result['model_calls']} model calls), "
                  f"re-runs {', '.join(f'{w * 1000:.0f}' for w in result['reruns'])} ms "
                  f"(0 model calls, {result['cache_hits']} cache hits, same accuracy)", flush=True)

    first_wall, rerun_wall = statistics.median(firsts), statistics.median(reruns)
    print(f"samples={result['n_samples']} first run: median {first_wall:.2f} s over {len(firsts)} rounds; "
          f"re-run: median {rerun_wall * 1000:.0f} ms, mean {statistics.mean(reruns) * 1000:.0f} ms over "
          f"{len(reruns)} (mean ratio {statistics.mean(firsts) / statistics.mean(reruns):.1f})")
    print(f"speedup={first_wall / rerun_wall:.1f}")


if __name__ == "__main__":
    main()
