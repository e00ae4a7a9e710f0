"""Calls in flight when a run stops are waited for and cached, by one mechanism for every kind of call.

The executor knows the streams it has open and :meth:`Executor.close` closes them (the run's recorder
does it when the run stops); a backend's stream closed early sends nothing more and hands back the
answers of its calls in flight, each kept with its own request even when one call answered a group
(embedding batches, log-likelihood groups). Counted at the local OpenAI-compatible server.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hyouka.engine.cache import ResponseCache
from hyouka.engine.executor import Executor
from hyouka.engine.recorder import RunRecorder
from hyouka.models.base import ChatRequest, GenerationParams, Message
from hyouka.models.openai_api import OpenAIModel
from hyouka.rag.calls import EmbedRequest
from hyouka.rag.embedders import OpenAIEmbedder
from hyouka.store.store import Store
from hyouka.testing.openai_server import ServerStats, serve_openai


def _repaid(stats: ServerStats) -> dict:
    return {key: n for key, n in stats.attempts.items() if n > 1}


def test_embedding_batches_in_flight_are_cached_when_the_stream_closes(tmp_path: Path) -> None:
    stats = ServerStats()
    cache = ResponseCache(tmp_path / "cache.sqlite")
    texts = [EmbedRequest(f"文{i}") for i in range(16)]  # 4 batches of 4, one in flight at a time
    with serve_openai(delay_s=0.3, stats=stats) as url:
        embedder = OpenAIEmbedder("emb", base_url=url, batch_size=4, concurrency=1)
        executor = Executor(embedder, cache)
        stream = executor.execute(texts)
        next(stream)  # one text of the first batch back: the second batch is in flight
        executor.close()
        sent = stats.by_path["embeddings"]
        time.sleep(0.5)
        assert stats.by_path["embeddings"] == sent < 4  # nothing is sent after the close
        again = Executor(embedder, cache)
        vectors = dict(again.execute(texts))
    # every batch sent before the close is cached whole: the first one's unread texts and the one in flight
    assert len(vectors) == 16 and again.stats.cache_hits == 4 * sent
    assert stats.by_path["embeddings"] == 4 and not _repaid(stats)


def test_a_stopped_run_caches_the_answers_in_flight_of_a_stream_still_held(tmp_path: Path) -> None:
    stats = ServerStats()
    cache = ResponseCache(tmp_path / "cache.sqlite")
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    requests = [ChatRequest((Message("user", f"質問{i}"),), GenerationParams(max_tokens=4)) for i in range(12)]
    with serve_openai(delay_s=0.3, stats=stats) as url:
        model = OpenAIModel("echo", base_url=url, concurrency=4)
        executor = Executor(model, cache)
        recorder = RunRecorder(store, kind="benchmark", model="openai:echo", task="t", mode="qa", config={"t": 1},
                               n_samples=len(requests), executors=[executor])
        stream = executor.execute(requests)  # held here: no refcount closes it when the run stops
        with pytest.raises(KeyboardInterrupt), recorder:
            next(stream)
            raise KeyboardInterrupt
        assert store.get_run(recorder.run_id)["status"] == "interrupted"
        sent = stats.by_path["chat/completions"]
        assert sent < len(requests)  # stopped: the rest were never sent
        again = Executor(model, cache)
        answers = dict(again.execute(requests))
    assert len(answers) == len(requests) and again.stats.cache_hits == sent  # every call made was kept
    assert not _repaid(stats)
