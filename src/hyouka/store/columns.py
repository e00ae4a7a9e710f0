"""The store's columns by table, and how each is read back: what the SQLite reader needs without SQLAlchemy.

:mod:`hyouka.store.schema` defines the tables; ``tests/test_store_reader.py`` checks that this
list names the same columns with the same kinds, so a column added there must be added here.
"""

from __future__ import annotations

# kind: "json" (text decoded as JSON), "datetime" (ISO text), "bool" (0/1), "plain" (as the driver gives it)
RUNS = {
    "id": "plain", "created_at": "datetime", "finished_at": "datetime", "status": "plain", "kind": "plain",
    "model": "plain", "task": "plain", "task_version": "plain", "task_hash": "plain", "mode": "plain",
    "suite": "plain", "config": "json", "config_hash": "plain", "model_identity": "json", "versions": "json",
    "n_samples": "plain", "duration_s": "plain", "stats": "json", "error": "plain",
    "owner": "plain", "heartbeat_at": "datetime", "open_key": "plain", "job_id": "plain",
}
SAMPLES = {
    "id": "plain", "run_id": "plain", "sample_index": "plain", "doc_id": "plain", "doc": "json", "prompt": "plain",
    "requests": "json", "responses": "json", "output": "plain", "extracted": "plain", "prediction": "json",
    "reference": "json", "metrics": "json", "details": "json", "status": "plain", "error": "plain",
    "latency_s": "plain", "prompt_tokens": "plain", "completion_tokens": "plain", "cost_usd": "plain",
}
AGGREGATES = {
    "id": "plain", "run_id": "plain", "metric": "plain", "value": "plain", "stderr": "plain", "ci_low": "plain",
    "ci_high": "plain", "n_scored": "plain", "n_total": "plain", "higher_is_better": "bool", "note": "plain",
}
RUN_SUMMARIES = {"run_id": "plain", "finished_at": "datetime", "summary": "json", "latencies": "plain",
                 "answer_latencies": "plain"}
TABLES = {"runs": RUNS, "samples": SAMPLES, "aggregates": AGGREGATES, "run_summaries": RUN_SUMMARIES}
