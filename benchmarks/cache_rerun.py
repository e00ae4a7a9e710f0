"""A re-run served from the response cache against the first run, end to end through ``hyouka.run``.

Builds the tiny Llama (fixed seed), scores JCommonsenseQA valid (3-shot, log-likelihood) once with
an empty cache, then runs the identical configuration again: every answer comes from the cache,
and the run still writes its 1,119 sample records and aggregates. Model loading is outside both
timings. The last line prints ``speedup=<first wall / re-run wall>`` (goal: at least 50)::

    python benchmarks/cache_rerun.py [--data ../shared/data/jglue-v1.3] [--num-fewshot 3] [--limit N]
"""

from __future__ import annotations

import argparse
import os
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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = HFModel(str(build_tiny_model(root / "tiny", corpus_dir=args.data)), dtype="float32", device="cpu")
        store = Store(f"sqlite:///{root / 'results.sqlite'}")
        cache = ResponseCache(root / "cache.sqlite")
        options = {"num_fewshot": args.num_fewshot, "limit": args.limit, "data_dir": args.data}

        start = time.perf_counter()
        first = hyouka.run(model, "jcommonsenseqa", store=store, cache=cache, **options)["jcommonsenseqa"]
        first_wall = time.perf_counter() - start

        start = time.perf_counter()
        again = hyouka.run(model, "jcommonsenseqa", store=store, cache=cache, **options)["jcommonsenseqa"]
        again_wall = time.perf_counter() - start

    same = first.aggregates["acc"]["value"] == again.aggregates["acc"]["value"]
    print(f"samples={first.n_samples} first: {first_wall:.2f} s, {first.model_calls} model calls")
    print(f"re-run: {again_wall:.3f} s, {again.model_calls} model calls, {again.cache_hits} cache hits, "
          f"same accuracy: {same}")
    print(f"speedup={first_wall / again_wall:.1f}")


if __name__ == "__main__":
    main()
