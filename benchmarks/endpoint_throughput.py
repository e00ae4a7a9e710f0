"""Throughput of the ``openai:`` backend against a local endpoint that answers after a fixed delay.

With ``concurrency`` requests always in flight, ``n`` requests that each take
``delay`` seconds ideally finish in ``n * delay / concurrency``; the last line
prints ``efficiency=<ideal wall / measured wall>`` (1.0 is perfect)::

    python benchmarks/endpoint_throughput.py [--requests 400] [--concurrency 32] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import time

from hyouka.models.base import GenerateRequest, GenerationParams, collect
from hyouka.models.openai_api import OpenAIModel
from hyouka.testing.openai_server import EchoModel, ServerStats, serve_openai


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.2, help="server answer delay in seconds")
    args = parser.parse_args()

    stats = ServerStats()
    params = GenerationParams(max_tokens=16)
    requests = [GenerateRequest(f"質問 {i}: 日本の首都はどこですか。", params) for i in range(args.requests)]
    with serve_openai(EchoModel(reply="東京です。"), delay_s=args.delay, stats=stats) as url:
        model = OpenAIModel("echo", base_url=url, api="completions", concurrency=args.concurrency)
        collect(model.generate(requests[: args.concurrency]), args.concurrency)  # warm up connections
        stats_before = stats.requests
        start = time.perf_counter()
        responses = collect(model.generate(requests), len(requests))
        wall = time.perf_counter() - start

    failed = sum(not r.ok for r in responses)
    latencies = sorted(r.latency_s or 0.0 for r in responses)
    ideal = args.requests * args.delay / args.concurrency
    print(f"requests={args.requests} concurrency={args.concurrency} delay={args.delay:.3f}s failed={failed}")
    print(f"server: requests={stats.requests - stats_before} max_in_flight={stats.max_in_flight}")
    print(f"latency: median={latencies[len(latencies) // 2]:.4f}s max={latencies[-1]:.4f}s")
    print(f"measured wall={wall:.3f}s ideal wall={ideal:.3f}s throughput={args.requests / wall:.1f} req/s")
    print(f"efficiency={ideal / wall:.3f}")


if __name__ == "__main__":
    main()
