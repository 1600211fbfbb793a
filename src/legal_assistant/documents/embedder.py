"""Embeddings for passages and queries, through the supervised embedding engine.

Every request leases the engine (`embed:multilingual-e5-small`, runtime/engines/embed.py):
it starts on first use, stays up while a request runs (no idle unload, no eviction under
the lease) and, when it crashed between two requests, the next lease restarts it. A
request whose connection broke (the engine died under it) is sent once more on a fresh
lease.

The e5 models need `query: ` / `passage: ` prefixes; the engine adds them itself from
the request's `input_type`, so the raw text is sent with the right `input_type` — never
a text prefixed here (the engine would embed "passage: passage: ...").

Every request goes through the Embedder's `EmbedQueue` (embed_queue.py): queries
(`query`, `queries`) are interactive and go before passages (`passages`); while people
search, ingestion leaves one of the engine's workers free for them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import httpx
import numpy as np
import numpy.typing as npt

from legal_assistant.config import Settings
from legal_assistant.documents.embed_queue import EmbedQueue
from legal_assistant.engine_http import engine_client
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.embed import EMBED_DIMENSION, EMBED_MODEL_ID, embed_workers
from legal_assistant.runtime.supervisor import Supervisor

Vectors = npt.NDArray[np.float32]
# progress(done, total) after each batch.
EmbedProgress = Callable[[int, int], None]

# Passages per `passages` progress step, and at most per engine request (the queue cuts
# smaller requests to bound their duration: `embed_batch_target_ms`).
DEFAULT_BATCH = 32
_BROKEN = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


class Embedder:
    def __init__(
        self,
        supervisor: Supervisor,
        settings: Settings,
        *,
        model_id: str = EMBED_MODEL_ID,
        batch_size: int | None = None,
    ) -> None:
        self._supervisor = supervisor
        self.model_id = model_id
        self.dimension = EMBED_DIMENSION
        self.batch_size = max(1, batch_size or settings.ingest_embed_batch or DEFAULT_BATCH)
        # One pooled loopback client; no read timeout (a long batch on a busy CPU takes
        # what it takes: the supervisor's watchdog owns "engine hung").
        self._http = engine_client(timeout=httpx.Timeout(None, connect=5.0))
        self.queue = EmbedQueue(
            self.request,
            dimension=self.dimension,
            max_batch=self.batch_size,
            target_s=settings.embed_batch_target_ms / 1000,
            slots=embed_workers(settings)[0],  # one request in flight a worker
            window_s=settings.embed_query_window_ms / 1000,
        )

    async def passages(
        self, texts: Sequence[str], progress: EmbedProgress | None = None
    ) -> Vectors:
        """(n, dimension) float32, L2-normalised; `progress(done, n)` after each batch of
        `batch_size` (bulk work: behind any waiting query)."""
        total = len(texts)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        for start in range(0, total, self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            out[start : start + len(batch)] = await self.queue.bulk(batch, "passage")
            if progress is not None:
                progress(start + len(batch), total)
        return out

    async def queries(self, texts: Sequence[str]) -> Vectors:
        """(n, dimension) float32, L2-normalised, embedded as queries (interactive work:
        search, grounding, the claim checker), in one engine request (with the other
        queries waiting at that moment), before any waiting passage."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return await self.queue.interactive(list(texts), "query")

    async def query(self, text: str) -> Vectors:
        """(dimension,) float32, L2-normalised (interactive, as `queries`)."""
        vectors = await self.queue.interactive([text], "query")
        row: Vectors = vectors[0].copy()
        return row

    async def aclose(self) -> None:
        await self.queue.aclose()
        await self._http.aclose()

    async def request(self, texts: list[str], input_type: str) -> Vectors:
        """One engine request, as it is: the queue's sender. Everything else goes
        through `queue` (only the benchmarks call this, to compare with the queue)."""
        # The engine cannot embed an empty string meaningfully; a blank passage (a page
        # of whitespace) gets the embedding of a single space, never a refused batch.
        body = {
            "input": [t if t.strip() else " " for t in texts],
            "input_type": input_type,
            "encoding_format": "base64",  # 4 bytes a dimension instead of ~20 in JSON
        }
        for attempt in (1, 2):
            async with self._supervisor.lease(self.model_id) as lease:
                engine = lease.engine
                try:
                    resp = await self._http.post(
                        f"{engine.base_url}/v1/embeddings",
                        json={"model": engine.served_model, **body},
                    )
                except _BROKEN as e:
                    if attempt == 2:
                        raise LegalAssistantError(
                            "engine_crashed", f"embedding engine: {e!r}"
                        ) from e
                    continue
            return self._decode(resp, len(texts))
        raise AssertionError("unreachable")

    def _decode(self, resp: httpx.Response, n: int) -> Vectors:
        if resp.status_code != 200:
            raise LegalAssistantError(
                "upstream_error", f"embedding engine: HTTP {resp.status_code}: {resp.text[:300]}"
            )
        try:
            items = sorted(resp.json()["data"], key=lambda d: d["index"])
            rows = [np.frombuffer(base64.b64decode(d["embedding"]), np.float32) for d in items]
            vectors = np.stack(rows).astype(np.float32, copy=False)
        except (ValueError, KeyError, TypeError) as e:
            raise LegalAssistantError("upstream_error", f"embedding engine: bad body: {e}") from e
        if vectors.shape != (n, self.dimension):
            raise LegalAssistantError(
                "upstream_error", f"embedding engine: got shape {vectors.shape}, want {n}"
            )
        return normalise(vectors)


def normalise(vectors: Vectors) -> Vectors:
    """Rows scaled to unit length (the engine's already are; a cheap guarantee for the
    cosine = dot product the index relies on)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    scaled: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return scaled
