"""Server time of each dashboard page on a large store: 200 runs, one of them with 100,000 samples
(ten of them MT-Bench judge runs), and a human study with 40 votes.

Requests go through the ASGI app in process (FastAPI's TestClient), so the time is the server's:
store queries, templates, JSON. Prints each page's median and p95, then
``p95_ms=<worst page p95> leaderboard_ms=<median leaderboard>`` (goal: ≤ 150 and ≤ 300).

    python benchmarks/dashboard_latency.py [--samples 100000] [--runs 200] [--repeat 15] [--store URL]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hyouka.store.store import Store

LABELS = ["entailment", "contradiction", "neutral"]
ANSWERS = ["含意", "矛盾", "中立"]
TASKS = ["jnli", "jcommonsenseqa", "marc_ja"]


def _samples(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        gold, said = rng.randrange(3), rng.randrange(3)
        out.append({
            "sample_index": i, "doc_id": str(i), "doc": {"sentence1": f"前提の文 {i}", "sentence2": f"仮説の文 {i}",
                                                         "label": LABELS[gold]},
            "prompt": f"前提と仮説の関係を答えてください。\n前提：前提の文 {i}\n仮説：仮説の文 {i}\n答え：",
            "requests": [], "responses": [{"text": ANSWERS[said], "prompt_tokens": 60, "completion_tokens": 2,
                                           "latency_s": 0.05 + rng.random() / 10, "finish_reason": "stop"}],
            "output": ANSWERS[said], "extracted": ANSWERS[said], "prediction": said, "reference": gold,
            "metrics": {"acc": float(said == gold), "format_error_rate": 0.0}, "details": {},
            "status": "ok" if rng.random() > 0.01 else "format_error", "error": None, "latency_s": 0.05,
            "prompt_tokens": 60, "completion_tokens": 2, "cost_usd": None,
        })
    return out


def _run(store: Store, model: str, task: str, n: int, rng: random.Random) -> str:
    run_id = store.create_run(model=model, task=task, task_version="1.0", task_hash=f"hash-{task}", mode="generate",
                              config={"task": task, "model": model, "num_fewshot": 0, "prompt_family": "plain",
                                      "mode": "generate", "seed": 0, "limit": None},
                              config_hash=f"{model}-{task}", versions={"hyouka": "bench"}, n_samples=n)
    samples = _samples(n, rng)
    for start in range(0, n, 5000):
        store.write_samples(run_id, samples[start:start + 5000], replace=False)
    acc = statistics.fmean(s["metrics"]["acc"] for s in samples)
    store.set_aggregates(run_id, [{"metric": "acc", "value": acc, "stderr": 0.01, "ci_low": acc - 0.02,
                                   "ci_high": acc + 0.02, "n_scored": n, "n_total": n}])
    store.finish_run(run_id, duration_s=1.0, stats={"statuses": {"ok": n}})
    return run_id


MT_CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]


def _mt_bench_run(store: Store, model: str, rng: random.Random) -> str:
    """A graded MT-Bench run as hyouka.judge.mt_bench.single stores it: 80 questions x 2 turns, scores 1-10."""
    run_id = store.create_run(model="openai:judge", task="ja_mt_bench", kind="judge", mode="single",
                              config={"task": "ja_mt_bench", "subject_model": model, "subject_name": model,
                                      "judge": "openai:judge", "mode": "single"},
                              config_hash=f"mt-{model}", versions={"hyouka": "bench"}, n_samples=160)
    samples = []
    for q in range(80):
        for turn in (1, 2):
            score = float(rng.randint(1, 10))
            samples.append({"sample_index": 2 * q + turn - 1, "doc_id": f"{81 + q}:{turn}",
                            "doc": {"question_id": str(81 + q), "category": MT_CATEGORIES[q // 10], "turn": turn,
                                    "turns": ["質問その一", "質問その二"]},
                            "prompt": "質問", "responses": [], "output": "回答です。" * 20, "metrics": {"score": score},
                            "details": {"justification": f"良い回答です。評価：[[{score:.0f}]]",
                                        "judge": {"raw": f"評価：[[{score:.0f}]]"}}, "status": "ok"})
    store.write_samples(run_id, samples, replace=False)
    aggregates = [{"metric": m, "value": 5.0, "n_scored": 80, "n_total": 80} for m in ("score", "turn_1", "turn_2")]
    store.set_aggregates(run_id, aggregates)
    store.finish_run(run_id, duration_s=1.0)
    return run_id


def _study(store: Store, runs: list[str], votes: int) -> str:
    """A pairwise study over ``runs`` with ``votes`` votes of one rater; the rater's token."""
    from hyouka import human

    human.new_study("bench-ab", runs, per_rater=votes + 10, raters_per_item=1, store=store)
    _, token = human.invite("bench-ab", store=store)
    for i in range(votes):
        shown = human.next_pair("bench-ab", token, store=store)
        human.record_vote("bench-ab", token, shown.item_id, ("left", "right", "tie")[i % 3], store=store)
    return token


def _time(client: Any, url: str, repeat: int) -> list[float]:
    client.get(url)  # warm: templates compiled, connections open
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code} {response.text[:200]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000, help="samples of the big run")
    parser.add_argument("--runs", type=int, default=200, help="runs in the store, the big one included")
    parser.add_argument("--small", type=int, default=50, help="samples of each other run")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--store", help="SQLAlchemy URL of an empty store (default: SQLite in a temp dir)")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from hyouka.web.app import create_app

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        started = time.perf_counter()
        big = _run(store, "openai:big-model", "jnli", args.samples, rng)
        other = _run(store, "openai:model-1", "jnli", args.small, rng)
        third = _run(store, "openai:model-2", "jnli", args.small, rng)
        for i in range(args.runs - 13):
            _run(store, f"openai:model-{i % 40}", TASKS[i % len(TASKS)], args.small, rng)
        for i in range(10):
            _mt_bench_run(store, f"openai:model-{i}", rng)
        token = _study(store, [other, third], 40)
        built = time.perf_counter() - started
        print(f"store: {args.runs} runs, big run {args.samples} samples, built in {built:.1f} s")
        client = TestClient(create_app(store))
        # a served dashboard is a process of its own: `hyouka serve` freezes what it holds at start-up, so the
        # collector's full passes skip it; here the builder's objects are frozen with it, as if never made
        gc.collect()
        gc.freeze()
        pages = {
            "runs": "/runs", "runs_filtered": "/runs?model=openai:model-3&status=completed",
            "api_runs": "/api/runs?task=jnli", "run_detail": f"/runs/{big}",
            "run_detail_last_page": f"/runs/{big}?offset={args.samples - 20}",
            "run_detail_correct": f"/runs/{big}?correct=correct&metric=acc",
            "run_detail_search": f"/runs/{big}?q=仮説の文 9999",
            "api_samples_status": f"/api/runs/{big}/samples?status=format_error",
            "compare_disagree": f"/compare?runs={big}&runs={other}&only=disagree",
            "compare_all": f"/compare?runs={big}&runs={other}",
            "compare_a_right": f"/compare?runs={big}&runs={other}&only=a_right_b_wrong&metric=acc",
            "run_detail_score_range": f"/runs/{big}?metric=acc&min=0.5&max=1",
            "runs_by_date": "/runs?since=2000-01-01&until=2999-12-31",
            "mt_bench": "/mt-bench", "api_mt_bench": "/api/mt-bench",
            "rate": f"/rate/bench-ab?token={token}", "study": "/studies/bench-ab",
        }
        p95s = []
        for name, url in pages.items():
            times = _time(client, url, args.repeat)
            p95 = statistics.quantiles(times, n=20)[-1]
            p95s.append(p95)
            print(f"{name:24s} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms")
        start = time.perf_counter()
        client.get(f"/api/compare?runs={big}&runs={other}&paired=true")
        print(f"{'compare_paired (opt-in)':24s} {(time.perf_counter() - start) * 1000:7.1f} ms once: "
              "the paired bootstrap reads every sample of both runs")
        # the runs above were written straight to the store, without the summary a run's recorder stores when
        # it finishes: as a store written before summaries existed, whose first leaderboard computes them once
        start = time.perf_counter()
        client.get("/leaderboard")
        backfill = (time.perf_counter() - start) * 1000
        print(f"{'leaderboard (older store)':24s} {backfill:7.1f} ms: once, summarising every run's calls")
        client = TestClient(create_app(store))  # a server started on the store, now summarised as runs leave it
        start = time.perf_counter()
        client.get("/leaderboard")
        first = (time.perf_counter() - start) * 1000  # cold: every run's summary read once
        board = _time(client, "/leaderboard", args.repeat)
        print(f"{'leaderboard (built)':24s} {first:7.1f} ms: after a start, and whenever a run finishes or is "
              "rescored")
        print(f"{'leaderboard (unchanged)':24s} median {statistics.median(board):7.1f} ms  max {max(board):7.1f} ms")
        store.close()
    print(f"p95_ms={max(p95s):.1f} leaderboard_ms={statistics.median(board):.1f} leaderboard_build_ms={first:.1f} "
          f"leaderboard_backfill_ms={backfill:.1f}")


if __name__ == "__main__":
    main()
