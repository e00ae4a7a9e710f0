"""A re-run served from the response cache against the first run, end to end through ``hyouka.run``.

Builds the tiny Llama (fixed seed) once, then for each round scores JCommonsenseQA valid (3-shot,
log-likelihood) with an empty cache and store, and runs the identical configuration again
``--reruns`` times: every answer comes from the cache, and each re-run still writes its 1,119
sample records and aggregates. Model loading is outside all timings. Rounds repeat the whole
measurement, so that both sides of the ratio are medians of the same number of rounds on a
shared, noisy machine. The last line prints ``speedup=<median first wall / median re-run wall>``
(goal: at least 50)::

    python benchmarks/cache_rerun.py [--data ../shared/data/jglue-v1.3] [--rounds 3] [--reruns 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import hyouka
from hyouka.engine.cache import ResponseCache
from hyouka.models.hf import HFModel
from hyouka.store.store import Store
from hyouka.testing.tiny import build_tiny_model

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jglue-v1.3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("HYOUKA_JGLUE_DIR", DEFAULT_DATA)))
    parser.add_argument("--num-fewshot", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="first run + re-runs, each with a fresh cache")
    parser.add_argument("--reruns", type=int, default=3, help="re-runs per round")
    args = parser.parse_args()

    firsts: list[float] = []
    reruns: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = HFModel(str(build_tiny_model(root / "tiny", corpus_dir=args.data)), dtype="float32", device="cpu")
        model.load()  # model loading stays outside the timings (it would otherwise fall in the first run)
        options = {"num_fewshot": args.num_fewshot, "limit": args.limit, "data_dir": args.data}
        for round_no in range(args.rounds):
            store = Store(f"sqlite:///{root / f'results-{round_no}.sqlite'}")
            cache = ResponseCache(root / f"cache-{round_no}.sqlite")

            start = time.perf_counter()
            first = hyouka.run(model, "jcommonsenseqa", store=store, cache=cache, **options)["jcommonsenseqa"]
            firsts.append(time.perf_counter() - start)

            walls = []
            for _ in range(args.reruns):
                start = time.perf_counter()
                again = hyouka.run(model, "jcommonsenseqa", store=store, cache=cache, **options)["jcommonsenseqa"]
                walls.append(time.perf_counter() - start)
                if again.model_calls or again.aggregates["acc"]["value"] != first.aggregates["acc"]["value"]:
                    raise SystemExit(f"a re-run called the model {again.model_calls} times or changed accuracy")
            reruns.extend(walls)
            print(f"round {round_no + 1}: first {firsts[-1]:.2f} s ({first.model_calls} model calls), "
                  f"re-runs {', '.join(f'{w * 1000:.0f}' for w in walls)} ms "
                  f"(0 model calls, {again.cache_hits} cache hits, same accuracy)")
            store.close()
            cache.close()

    first_wall, rerun_wall = statistics.median(firsts), statistics.median(reruns)
    print(f"samples={first.n_samples} first run: median {first_wall:.2f} s over {len(firsts)} rounds; "
          f"re-run: median {rerun_wall * 1000:.0f} ms over {len(reruns)}")
    # round 1 is what a user sees in a fresh process; later rounds' first runs find the process warm
    print(f"round 1 alone: first {firsts[0]:.2f} s / median re-run "
          f"{statistics.median(reruns[: args.reruns]) * 1000:.0f} ms = "
          f"{firsts[0] / statistics.median(reruns[: args.reruns]):.1f}x")
    print(f"speedup={first_wall / rerun_wall:.1f}")


if __name__ == "__main__":
    main()
