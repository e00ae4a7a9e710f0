"""A results store filled by the runner for the dashboard tests: three models, hostile text, a cut answer."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import hyouka
from hyouka.models.base import GenerateRequest, Response
from hyouka.store.store import Store
from tests.fakes import ScriptedModel

LIMIT = 30  # the first 30 JNLI validation pairs hold all three labels (18 neutral, 8 contradiction, 4 entailment)
PAYLOAD = ('<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
           '<a id="evil" href="javascript:window.__pwned=3">リンク</a>')
EVIL_TASK = 'jnli<script>window.__pwned=4</script><img src=x onerror="window.__pwned=5">'


class CutModel(ScriptedModel):
    """Answers every prompt, and reports each answer as stopped at ``max_tokens``."""

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        for index, response in super().generate(requests):
            response.finish_reason = "length"
            yield index, response


def _model(name: str, answer: str, cls: type[ScriptedModel] = ScriptedModel) -> ScriptedModel:
    model = cls(answer=lambda _prompt: answer)
    model.name = name
    return model


def jnli_golds(jglue_dir: Path, limit: int = LIMIT) -> list[str]:
    """The first ``limit`` gold labels of JNLI's validation file, read straight from the data."""
    lines = (jglue_dir / "jnli-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["label"] for line in lines[:limit]]


def build_store(tmp: Path, jglue_dir: Path, url: str | None = None) -> dict[str, Any]:
    """Runs of three models on JNLI (one with a payload in its output, one cut at max_tokens) and a hostile task."""
    store = Store(url or f"sqlite:///{tmp / 'web.sqlite'}")
    runs: dict[str, str] = {}
    models = {"entail": _model("entail-model", "含意"),
              "evil": _model("evil-model", f"矛盾 {PAYLOAD}"),
              "cut": _model("cut-model", "中立", CutModel)}
    for key, model in models.items():
        result = hyouka.run(model, "jnli", mode="generate", limit=LIMIT, data_dir=jglue_dir, store=store, cache=False)
        runs[key] = result.runs[0].run_id
    task_file = tmp / "evil_task.yaml"
    builtin = Path(hyouka.__file__).parent / "tasks" / "builtin" / "jnli.yaml"
    task_file.write_text(builtin.read_text(encoding="utf-8").replace("task: jnli", f"task: '{EVIL_TASK}'"),
                         encoding="utf-8")
    result = hyouka.run(models["entail"], str(task_file), mode="generate", limit=4, data_dir=jglue_dir, store=store,
                        cache=False)
    runs["evil_task"] = result.runs[0].run_id
    return {"store": store, "runs": runs, "golds": jnli_golds(jglue_dir), "tmp": tmp}


def check_repeated_document_ids(url: str) -> None:
    """Rows sharing an id are one item of side by side's 'every example': its total and its pages agree."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from hyouka.evaluation import evaluate
    from hyouka.web.app import create_app

    table = pd.DataFrame({"qid": ["q1", "q1", "q2", "q3", "q3", "q3", "q4"], "question": list("abcdefg"),
                          "gold": ["1", "1", "2", "3", "3", "3", "4"], "x": ["1", "0", "2", "3", "0", "0", "0"],
                          "y": ["0", "0", "2", "0", "0", "0", "4"]})
    runs = [evaluate(None, table, predictions=c, targets="gold", inputs="question", id_column="qid",
                     metrics="exact_match", store=url, cache=False).run_id for c in "xy"]
    client = TestClient(create_app(url))
    for limit in (1, 2, 3):
        seen, offset = [], 0
        while True:
            page = client.get("/api/compare", params={"runs": runs, "limit": limit, "offset": offset}).json()
            assert page["total"] == 4
            if not page["items"]:
                break
            assert len(page["items"]) == min(limit, 4 - offset)
            seen += [i["doc_id"] for i in page["items"]]
            offset += limit
        assert seen == ["q1", "q2", "q3", "q4"]
    first = client.get("/api/compare", params={"runs": runs, "limit": 1}).json()["items"][0]
    assert [a["output"] for a in first["answers"]] == ["1", "0"]  # each run's first sample of q1
    right = client.get("/api/compare", params={"runs": runs, "only": "a_right_b_wrong", "metric": "exact_match"})
    assert [i["doc_id"] for i in right.json()["items"]] == ["q1", "q3"] and right.json()["total"] == 2
