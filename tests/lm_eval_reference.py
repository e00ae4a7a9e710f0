"""Run lm-evaluation-harness itself on task YAML files and write its logged samples as JSON.

    python tests/lm_eval_reference.py MODEL_DIR OUT.json TASK.yaml [TASK.yaml ...]

Used by tests/test_lm_eval_compat.py in a subprocess (lm-eval is a test dependency only):
the HF model type (``HFLM``, fp32, CPU), ``simple_evaluate`` with ``log_samples``, lm-eval's
default few-shot seed. Each task's samples: doc id, the (context, continuation) arguments and
the log-likelihood of each continuation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(model_dir: str, out: str, *task_files: str) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks._yaml_loader import load_yaml

    configs = [load_yaml(path) for path in task_files]  # include resolved, !function imported
    lm = HFLM(pretrained=model_dir, batch_size=16, device="cpu", dtype="float32")
    results = simple_evaluate(model=lm, tasks=configs, log_samples=True, verbosity="ERROR")
    logged = {}
    for config in configs:
        samples = sorted(results["samples"][config["task"]], key=lambda s: s["doc_id"])
        logged[config["task"]] = [
            {
                "doc_id": s["doc_id"],
                "arguments": [list(a) for a in s["arguments"]],
                "logprobs": [float(r[0][0]) for r in s["resps"]],
                "acc": s["acc"],
            }
            for s in samples
        ]
    Path(out).write_text(json.dumps(logged, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
