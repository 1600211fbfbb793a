"""The embedding queue's order, seen from the engine: a query goes before the next
ingestion batch, and while people search it never waits behind one (a worker is kept for
it); concurrent queries share engine requests; results are those of sequential calls.

The engine is `tests/fakes/fake_embed_engine.py`, a protocol-faithful stand-in for the
embedding engine (`legal_assistant.embed_serve`: same /v1/embeddings protocol, the same
`--workers` inferences at a time) that records the requests in the order it ran them and
can hold them "in flight": order, not timing, is what these tests check, and the real
engine cannot be held. It runs under the real supervisor, through the real Embedder.
Search during an ingestion against the real engine is measured in
benchmarks/search_load.py."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import generate_latest

from app_harness import poll
from fakes.fake_embed_engine import vector
from legal_assistant.api.metrics import Metrics
from legal_assistant.config import Settings
from legal_assistant.documents import embed_queue
from legal_assistant.documents.embedder import Embedder
from legal_assistant.runtime.supervisor import Supervisor

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_embed_engine.py"
TIMEOUT = 30.0


@pytest.fixture
async def sup(
    request: pytest.FixtureRequest, settings: Settings, make_sup: Callable[[Settings], Supervisor]
) -> AsyncIterator[Supervisor]:
    # A long time budget per bulk request: the held requests must not shrink the batches
    # (their size, not their duration, is what these tests read).
    # One worker, unless a test asks for more (an indirect parameter).
    update = {
        "embed_command": [sys.executable, str(FAKE)],
        "embed_batch_target_ms": 60_000,
        "embed_workers": getattr(request, "param", 1),
    }
    yield make_sup(settings.model_copy(update=update))


@pytest.fixture
async def embedder(sup: Supervisor) -> AsyncIterator[Embedder]:
    # Two passages per request at most: the batches are known in advance.
    emb = Embedder(sup, sup.settings, batch_size=2)
    await emb.query("warm-up")  # the engine's start is not what is tested
    yield emb
    await emb.aclose()


@pytest.fixture
def engine(sup: Supervisor, embedder: Embedder) -> Engine:
    return Engine(sup.engines()[0].base_url)


class Engine:
    def __init__(self, url: str) -> None:
        self.url = url

    async def post(self, path: str) -> None:
        async with httpx.AsyncClient(trust_env=False) as c:
            (await c.post(self.url + path)).raise_for_status()

    async def log(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(trust_env=False) as c:
            resp = await c.get(self.url + "/_test/log")
        entries: list[dict[str, Any]] = resp.json()
        return [e for e in entries if e["texts"] not in (["ok"], ["warm-up"])]


def doc(name: str, n: int) -> list[str]:
    return [f"{name} passage {i}" for i in range(n)]


async def test_a_query_goes_before_the_next_ingestion_batch(
    sup: Supervisor, embedder: Embedder, engine: Engine
) -> None:
    await engine.post("/_test/hold")
    # Two documents being ingested at once (ingest_workers=2), three requests each.
    ingest = [asyncio.create_task(embedder.passages(doc(d, 6))) for d in ("A", "B")]
    await poll(engine.log, timeout=TIMEOUT, what="the first batch in flight")
    questions = ["Qui répare le dommage ?", "Quel délai de prescription ?", "Bail ?"]
    searches = [
        asyncio.create_task(embedder.query(questions[0])),
        asyncio.create_task(embedder.queries(questions[1:])),
    ]
    await poll(
        lambda: embedder.queue.depth("interactive") == 3, timeout=TIMEOUT, what="queries queued"
    )
    assert len(await engine.log()) == 1  # nothing else reached the engine meanwhile
    await engine.post("/_test/release")
    async with asyncio.timeout(TIMEOUT):
        vectors_a, vectors_b = await asyncio.gather(*ingest)
        one, two = await asyncio.gather(*searches)

    log = await engine.log()
    kinds = [(e["input_type"], e["texts"][0].split()[0]) for e in log]
    # The batch in flight, then every waiting query in one request, then the ingestion
    # batches, the two documents taking turns.
    assert kinds[0] == ("passage", "A")
    assert log[1] == {"input_type": "query", "texts": questions}
    assert [k for k, _ in kinds[2:]] == ["passage"] * 5
    assert [d for _, d in kinds[2:]] == ["B", "A", "B", "A", "B"]
    assert all(len(e["texts"]) == 2 for e in log if e["input_type"] == "passage")
    # The right vectors went back to the right callers.
    assert np.allclose(one, vector(questions[0], True))
    assert np.allclose(two, np.stack([vector(q, True) for q in questions[1:]]))
    assert np.allclose(vectors_a, np.stack([vector(t, False) for t in doc("A", 6)]))
    assert np.allclose(vectors_b, np.stack([vector(t, False) for t in doc("B", 6)]))
    stats = embedder.queue.stats
    assert stats["bulk"].requests == 6 and stats["bulk"].texts == 12
    # /metrics: the waits per lane (the three queries waited for the held batch).
    metrics = Metrics(sup)
    metrics.watch_embedding(embedder.queue)
    text = generate_latest(metrics.registry).decode()
    assert 'legal_assistant_embed_requests_total{lane="bulk"} 6.0' in text
    wait = "legal_assistant_embed_queue_wait_seconds"
    assert float(_sample(text, wait + '_sum{lane="interactive"}')) > 0
    # Three waits: the warm-up, `query` and `queries` (one each, whatever their size).
    assert _sample(text, wait + '_count{lane="interactive"}') == "3.0"
    assert 'legal_assistant_embed_queue_depth{lane="interactive"} 0.0' in text
    assert 'legal_assistant_embed_in_flight{lane="bulk"} 0.0' in text


@pytest.mark.parametrize("sup", [2], indirect=True)
async def test_while_people_search_a_query_never_waits_behind_an_ingestion(
    sup: Supervisor, embedder: Embedder, engine: Engine
) -> None:
    """Two workers, someone searched (the fixture's warm-up query): the ingestion takes
    one worker, the other is kept free, so a query runs while an ingestion batch is held
    in flight (it would hang here if it waited behind it)."""
    assert embedder.queue.slots == 2 and embedder.queue.searching()
    await engine.post("/_test/hold?passage")
    ingest = asyncio.create_task(embedder.queue.bulk(doc("A", 6)))  # 3 pieces of 2
    await poll(engine.log, timeout=TIMEOUT, what="the first batch in flight")
    async with asyncio.timeout(TIMEOUT):
        found = await embedder.query("Qui répare le dommage ?")
    assert np.allclose(found, vector("Qui répare le dommage ?", True))
    log = await engine.log()
    assert [(e["input_type"], len(e["texts"])) for e in log] == [("passage", 2), ("query", 1)]
    assert embedder.queue.stats["bulk"].in_flight == 1  # not both workers
    metrics = Metrics(sup)
    metrics.watch_embedding(embedder.queue)
    text = generate_latest(metrics.registry).decode()
    assert 'legal_assistant_embed_in_flight{lane="bulk"} 1.0' in text
    assert 'legal_assistant_embed_in_flight{lane="interactive"} 0.0' in text
    assert embedder.queue.depth("bulk") == 4
    await engine.post("/_test/release")
    async with asyncio.timeout(TIMEOUT):
        assert np.allclose(await ingest, np.stack([vector(t, False) for t in doc("A", 6)]))


@pytest.mark.parametrize("sup", [2], indirect=True)
async def test_a_big_query_job_is_shared_by_the_workers(embedder: Embedder, engine: Engine) -> None:
    """A claim check embeds its statements and passages in one `queries` call: with two
    workers, its texts go in two requests at once (both held in flight here), not in one
    request on one worker; the vectors come back in order, a repeated text embedded once."""
    texts = [f"énoncé {i} : le bail est résilié" for i in range(10)]
    texts[4] = texts[0]  # a statement that is also a passage, say
    await engine.post("/_test/hold")
    check = asyncio.create_task(embedder.queries(texts))
    await poll(lambda: _count(engine, 2), timeout=TIMEOUT, what="two requests in flight")
    await engine.post("/_test/release")
    async with asyncio.timeout(TIMEOUT):
        vectors = await check
    log = await engine.log()
    # Two requests of 5 (the two in flight at once); the duplicate sent once in its own.
    assert sorted(len(e["texts"]) for e in log) == [4, 5]
    assert sorted(t for e in log for t in e["texts"]) == sorted(set(texts))
    assert np.allclose(vectors, np.stack([vector(t, True) for t in texts]))


async def test_while_nobody_searches_an_ingestion_takes_every_worker() -> None:
    """The queue alone, with a sender that holds each request until the test answers it
    and a clock the test moves: no query for QUIET_S, bulk work fills both workers; a
    query then takes the first worker that frees, before the ingestion's next piece, and
    from then on one worker stays free for the searches."""
    clock = {"now": 0.0}
    sent: list[tuple[str, list[str], asyncio.Future[np.ndarray]]] = []
    changed = asyncio.Event()

    async def send(texts: list[str], input_type: str) -> np.ndarray:
        answer: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        sent.append((input_type, texts, answer))
        changed.set()
        return await answer

    async def sent_count(n: int) -> None:
        while len(sent) < n:
            changed.clear()
            await changed.wait()

    def answer(i: int) -> None:
        kind, texts, fut = sent[i]
        fut.set_result(np.stack([vector(t, kind == "query")[:4] for t in texts]))

    queue = embed_queue.EmbedQueue(
        send, dimension=4, max_batch=2, target_s=60.0, slots=2, clock=lambda: clock["now"]
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            ingest = asyncio.create_task(queue.bulk(doc("A", 8)))
            await sent_count(2)
            assert [(k, len(t)) for k, t, _ in sent] == [("passage", 2), ("passage", 2)]
            query = asyncio.create_task(queue.interactive(["Bail ?"]))
            await asyncio.sleep(0)  # let the query reach the queue: it has no free worker
            assert len(sent) == 2 and queue.depth("interactive") == 1
            answer(0)  # a worker frees: the query, not the third piece
            await sent_count(3)
            assert sent[2][:2] == ("query", ["Bail ?"])
            answer(1)  # the other worker frees: a piece, but only one at a time now
            await sent_count(4)
            answer(2)
            assert np.allclose(await query, vector("Bail ?", True)[:4])
            for i in (3, 4):  # the last two pieces
                await sent_count(i + 1)
                assert queue.stats["bulk"].in_flight == 1  # the other worker kept free
                answer(i)
            vectors = await ingest
        assert [(k, t[0]) for k, t, _ in sent if k == "passage"] == [
            ("passage", f"A passage {i}") for i in range(0, 8, 2)
        ]
        assert np.allclose(vectors, np.stack([vector(t, False)[:4] for t in doc("A", 8)]))
    finally:
        await queue.aclose()


def _sample(text: str, name: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return line.split()[-1]


async def test_concurrent_queries_share_engine_requests(embedder: Embedder, engine: Engine) -> None:
    questions = [f"question {i} sur la responsabilité" for i in range(20)]
    sequential = [await embedder.query(q) for q in questions]
    start = len(await engine.log())
    async with asyncio.timeout(TIMEOUT):
        together = await asyncio.gather(*(embedder.query(q) for q in questions))
    sent = (await engine.log())[start:]
    assert 1 <= len(sent) < len(questions)
    assert sorted(t for e in sent for t in e["texts"]) == sorted(questions)
    for a, b in zip(sequential, together, strict=True):
        assert np.array_equal(a, b)

    # Queries arriving while one is in flight go together in the next requests.
    await engine.post("/_test/hold")
    first = asyncio.create_task(embedder.query("la première"))
    await poll(lambda: _count(engine, start + len(sent) + 1), timeout=TIMEOUT, what="in flight")
    later = [asyncio.create_task(embedder.query(q)) for q in questions[:10]]
    await poll(lambda: embedder.queue.depth("interactive") == 10, timeout=TIMEOUT, what="queued")
    await engine.post("/_test/release")
    async with asyncio.timeout(TIMEOUT):
        await first
        results = await asyncio.gather(*later)
    tail = (await engine.log())[start + len(sent) :]
    cap = embedder.queue.max_interactive  # texts a request, at most (8)
    assert [len(e["texts"]) for e in tail] == [1, cap, 10 - cap]
    for got, want in zip(results, sequential[:10], strict=True):
        assert np.array_equal(got, want)


async def _count(engine: Engine, n: int) -> bool:
    return len(await engine.log()) >= n


async def test_a_cancelled_ingestion_leaves_the_queue(embedder: Embedder, engine: Engine) -> None:
    await engine.post("/_test/hold")
    doomed = asyncio.create_task(embedder.passages(doc("C", 8)))
    await poll(engine.log, timeout=TIMEOUT, what="the first batch in flight")
    doomed.cancel()  # the document was deleted during its ingestion
    query = asyncio.create_task(embedder.query("encore là ?"))
    await poll(lambda: embedder.queue.depth("interactive") == 1, timeout=TIMEOUT, what="queued")
    await engine.post("/_test/release")
    async with asyncio.timeout(TIMEOUT):
        assert np.allclose(await query, vector("encore là ?", True))
    with pytest.raises(asyncio.CancelledError):
        await doomed
    log = await engine.log()
    assert [e["texts"][0].split()[0] for e in log] == ["C", "encore"]
    assert embedder.queue.depth("bulk") == 0


async def test_bulk_requests_are_cut_to_the_time_target() -> None:
    """The cut of bulk requests, on the queue alone: the sender stands in for the engine
    and advances a fake clock by a known cost per character, so the measured durations
    (what the cut learns from) are exact and no real time is involved."""
    clock = {"now": 0.0, "per_char": 0.001}
    sizes: list[int] = []

    async def send(texts: list[str], input_type: str) -> np.ndarray:
        sizes.append(len(texts))
        clock["now"] += clock["per_char"] * sum(len(t) for t in texts)
        return np.zeros((len(texts), 4), dtype=np.float32)

    queue = embed_queue.EmbedQueue(
        send, dimension=4, max_batch=32, target_s=0.25, clock=lambda: clock["now"]
    )
    texts = [f"{i:03d}" + "x" * 97 for i in range(20)]  # 0.1 s each
    try:
        assert (await queue.bulk(texts)).shape == (20, 4)
        assert sizes == [4] + [2] * 8  # the first cut is small, then measured: 2 fit
        sizes.clear()
        clock["per_char"] = 0.004  # the machine got 4x slower: 0.4 s a text
        await queue.bulk(texts[:8])
        assert sizes[0] == 2 and sizes[-3:] == [1, 1, 1]  # it learns, one text at least
        sizes.clear()
        clock["per_char"] = 0.00001  # and much faster
        await queue.bulk([f"{i:03d}" + "x" * 97 for i in range(200)])
        assert sizes[0] <= 2 and max(sizes) == 32  # it grows back, up to max_batch
    finally:
        await queue.aclose()
