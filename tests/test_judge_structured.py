"""Structured output: the rubric's JSON schema reaches endpoints that honour ``response_format``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("fastapi")

from hyouka.evaluation import evaluate
from hyouka.models.base import Capabilities, ChatRequest, Response
from hyouka.models.openai_api import OpenAIModel
from hyouka.testing.openai_server import serve_openai


class SchemaRecordingJudge:
    """A chat backend that notes each request's ``response_format`` and answers in JSON."""

    def __init__(self) -> None:
        self.name = "schema-judge"
        self.capabilities = Capabilities(chat=True)
        self.formats: list[str | None] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": "schema-judge"}

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            self.formats.append(request.params.response_format)
            yield index, Response(text='{"justification": "一致", "score": 4}', prompt_tokens=5, completion_tokens=5)


@pytest.mark.parametrize("structured", [True, False])
def test_rubric_schema_is_sent_only_to_structured_endpoints(structured: bool, tmp_path: Path) -> None:
    backend = SchemaRecordingJudge()
    data = pd.DataFrame({"question": ["首都は？", "最大の湖は？"], "ground_truth": ["東京", "琵琶湖"],
                         "answer": ["東京", "琵琶湖です"]})
    with serve_openai(backend, model_name="judge") as url:
        judge = OpenAIModel("judge", base_url=url, structured_output=structured)
        result = evaluate(data=data, predictions="answer", targets="ground_truth", judge=judge,
                          metrics=["answer_correctness"], store=f"sqlite:///{tmp_path / 'r.sqlite'}", cache=False)
    assert result.table["answer_correctness/score"].tolist() == [4.0, 4.0]
    assert len(backend.formats) == 2
    if not structured:
        assert backend.formats == [None, None]
        return
    schema = json.loads(backend.formats[0])
    assert schema["type"] == "json_schema"
    score = schema["json_schema"]["schema"]["properties"]["score"]
    assert (score["minimum"], score["maximum"]) == (1, 5)
    assert schema["json_schema"]["schema"]["required"] == ["justification", "score"]
