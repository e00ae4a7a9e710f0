"""Scripted models for ladder tests, whose scores and costs are known by construction.

Each question ``問{i}の答えは何か（難しさ{d}）`` has the answer ``語{i}`` and a difficulty ``d`` (0-4,
``i % 5``). A :class:`Student` of skill ``s`` answers it right exactly when ``d <= s + shots``,
where ``shots`` is the number of solved examples in the prompt (JSQuAD's ``答え：`` blocks, or
earlier assistant turns in a chat), and always when a retrieved chunk in the prompt says the answer
(``語{i}が問{i}の答え。``, the documents of :func:`rag_documents`). It reports
``TOKENS_PER_PART * (1 + shots + chunks)`` prompt tokens and ``ANSWER_TOKENS`` completion tokens, so a
cell's cost follows from the price table by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hyouka.models.base import Capabilities, ChatRequest, GenerateRequest, Message, Response

N_QUESTIONS = 20
TOKENS_PER_PART = 100
ANSWER_TOKENS = 10
_QUESTION = re.compile(r"問(\d+)の答えは何か（難しさ(\d)）")
_CHUNK = re.compile(r"語(\d+)が問(\d+)の答え")


def question(i: int) -> str:
    return f"問{i}の答えは何か（難しさ{i % 5}）"


def expected_score(skill: int, shots: int, n: int = N_QUESTIONS) -> float:
    """The share of questions a student of ``skill`` gets right after ``shots`` examples."""
    return sum(1 for i in range(n) if i % 5 <= skill + shots) / n


def expected_cost_per_1k(price_in: float, price_out: float, shots: int, chunks: int = 0) -> float:
    """USD per 1,000 questions at ``price_in``/``price_out`` USD per million tokens."""
    per_question = (TOKENS_PER_PART * (1 + shots + chunks) * price_in + ANSWER_TOKENS * price_out) / 1e6
    return per_question * 1000


class Student:
    """A generate-and-chat backend answering by the rule in the module docstring; it counts what it is asked."""

    capabilities = Capabilities(generate=True, chat=True)

    def __init__(self, name: str, skill: int) -> None:
        self.name = name
        self.skill = skill
        self.asked: list[tuple[int, int]] = []  # (question, shots) of every call

    def identity(self) -> dict[str, Any]:
        return {"backend": "student", "name": self.name, "skill": self.skill}

    def loglikelihood(self, requests: Sequence[Any]) -> Iterator[tuple[int, Response]]:
        raise NotImplementedError

    def _answer(self, text: str, shots: int) -> Response:
        found = _QUESTION.findall(text)
        if not found:
            return Response(text="？", prompt_tokens=TOKENS_PER_PART, completion_tokens=ANSWER_TOKENS)
        i, d = (int(x) for x in found[-1])
        self.asked.append((i, shots))
        chunks = _CHUNK.findall(text)
        right = d <= self.skill + shots or (str(i), str(i)) in chunks
        return Response(text=f"語{i}" if right else "×", prompt_tokens=TOKENS_PER_PART * (1 + shots + len(chunks)),
                        completion_tokens=ANSWER_TOKENS, finish_reason="stop")

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            yield index, self._answer(request.prompt, max(0, request.prompt.count("答え：") - 1))

    def chat(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, Response]]:
        for index, request in enumerate(requests):
            messages: tuple[Message, ...] = request.messages
            shots = sum(1 for m in messages if m.role == "assistant")
            if len(messages) == 1 and "答え：" in messages[0].content:  # a text prompt sent as one chat message
                shots = max(0, messages[0].content.count("答え：") - 1)
            last = next(m.content for m in reversed(messages) if m.role == "user")
            yield index, self._answer(last, shots)


def write_jsquad(path: Path, n: int = N_QUESTIONS) -> Path:
    """A JSQuAD-format file (SQuAD JSON) of the scripted questions."""
    data = {"version": "v1.3", "data": [
        {"title": f"t{i}", "paragraphs": [{"context": f"文書{i}。答えは語{i}です。", "qas": [
            {"id": f"q{i}", "question": question(i), "answers": [{"text": f"語{i}", "answer_start": 8}],
             "is_impossible": False}]}]}
        for i in range(n)]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def write_qa(path: Path, n: int = N_QUESTIONS) -> Path:
    """The same questions as one's own data (``inputs``, ``ground_truth``) in JSON lines."""
    rows = [{"id": f"q{i}", "inputs": question(i), "ground_truth": f"語{i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def rag_documents(n: int = N_QUESTIONS) -> list[Any]:
    """One document per question, holding its answer: what a retrieval rung finds."""
    from hyouka.rag.documents import Document

    return [Document(id=f"d{i}", title=f"問{i}", text=f"語{i}が問{i}の答え。") for i in range(n)]


def write_prices(path: Path, prices: dict[str, tuple[float, float]]) -> Path:
    lines = ["version: test", "models:"] + [f"  {name}: {{input: {pin}, output: {pout}}}"
                                            for name, (pin, pout) in prices.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def correctness_judge(messages: tuple[Message, ...]) -> str:
    """A judge reply: 5 when the graded answer is the ground truth shown beside it (``語N`` twice), else 1."""
    prompt = next(m.content for m in messages if m.role == "user")
    score = 5 if len(re.findall(r"語\d+", prompt)) >= 2 else 1
    return json.dumps({"justification": f"理由 {score}", "score": score}, ensure_ascii=False)
