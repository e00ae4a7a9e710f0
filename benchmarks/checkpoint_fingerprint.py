"""Content fingerprint of a local checkpoint: the first hash of its files against a re-run's cached one.

Writes a checkpoint-like folder (``--mb`` MiB of random bytes in a few shards, one in a
subfolder, plus small JSON files) in a temporary directory, then in the same run measures
``folder_fingerprint`` with an empty digest file (every byte read and hashed) and again in a
fresh digest-file reader (sizes and mtimes match: nothing is read). Last line:
``hash_mib_per_s=<first-hash throughput> first_s=<s> cached_ms=<ms> speedup=<first / cached>``::

    python benchmarks/checkpoint_fingerprint.py [--mb 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from hyouka.models.fingerprint import FingerprintCache, folder_fingerprint


def make_checkpoint(root: Path, mib: int) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (root / "tokenizer.json").write_bytes(os.urandom(2 << 20))
    shards = [root / "model-00001-of-00002.safetensors", root / "sub" / "model-00002-of-00002.safetensors"]
    chunk = os.urandom(1 << 20)
    for i, shard in enumerate(shards):
        with shard.open("wb") as f:
            for _ in range(mib // len(shards)):
                f.write(chunk[i:] + chunk[:i])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ckpt"
        make_checkpoint(root, args.mb)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        digests = Path(tmp) / "fingerprints.json"
        start = time.perf_counter()
        first = folder_fingerprint(root, FingerprintCache(digests))
        first_s = time.perf_counter() - start
        cached = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            again = folder_fingerprint(root, FingerprintCache(digests))  # as a new process would: read the file
            cached.append(time.perf_counter() - start)
            assert again == first
    cached_s = statistics.median(cached)
    print(f"checkpoint: {size / 2**20:.0f} MiB in 4 files; first hash {first_s:.2f} s, cached re-run "
          f"{cached_s * 1000:.2f} ms (median of {args.repeats})")
    print(f"hash_mib_per_s={size / 2**20 / first_s:.0f} first_s={first_s:.3f} cached_ms={cached_s * 1000:.2f} "
          f"speedup={first_s / cached_s:.0f}")


if __name__ == "__main__":
    main()
