"""What the gateway protocols share (OpenAI `/v1`, Anthropic `/v1/messages`, Ollama
`/ollama/api`): the streamed response whose cleanup always runs, the upstream POST, and
`EngineCall` — one request's hold on an OpenAI-compatible server, from the admission
slot to the last byte.

Every protocol is served by the engine's OpenAI API: the managed engines (mlx_lm.server,
llama-server, vLLM, the embedding engine) speak it, so do configured `openai:` endpoints and the
Ollama daemon (its `/v1`). The translating protocols take the engine's stream as parsed
OpenAI chunks (`EngineCall.chunks`); the OpenAI gateway relays the bytes untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from legal_assistant.api.loop_guard import ChunkGuard
from legal_assistant.api.state import AppState
from legal_assistant.catalog import ModelRef
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.lifecycle import Lease


class ClientStalled(Exception):
    """The client stopped reading: a send stayed blocked for the whole send timeout."""


class CleanupStream(StreamingResponse):
    """A StreamingResponse whose cleanup runs however the response ends — including a
    client that disconnects before the first byte, when the body generator never starts
    (its own `finally` would then never run and the engine lease would leak), and a
    client that stays connected but stops reading: without a bound on each send, it
    would hold the engine lease, and every switch waiting for it, forever."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        cleanup: Callable[[], Awaitable[None]],
        *,
        send_timeout: float,
        **kw: Any,
    ) -> None:
        super().__init__(content, **kw)
        self._cleanup = cleanup
        self._send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def bounded_send(message: Message) -> None:
            try:
                async with asyncio.timeout(self._send_timeout):
                    await send(message)
            except TimeoutError:
                raise ClientStalled from None

        try:
            await super().__call__(scope, receive, bounded_send)
        except ClientStalled:
            pass  # the server closes the connection of a response left unfinished
        finally:
            await self._cleanup()


async def send_upstream(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    lease: Lease | None = None,
) -> httpx.Response:
    """POST `body` as JSON, response streamed (the caller closes it). To a supervised
    engine (`lease`), each read waits at most ENGINE_READ_TIMEOUT_S: see `read_upstream`."""
    timeout = (
        httpx.Timeout(lease.engine.settings.engine_read_timeout_s, connect=5.0)
        if lease is not None
        else httpx.USE_CLIENT_DEFAULT
    )
    req = http.build_request(
        "POST", url, content=json.dumps(body).encode(), headers=headers, timeout=timeout
    )
    try:
        return await http.send(req, stream=True)
    except httpx.ReadTimeout as e:
        raise wedged(lease, url) from e
    except httpx.HTTPError as e:
        raise LegalAssistantError("upstream_error", f"{url}: {type(e).__name__}: {e}") from e


def wedged(lease: Lease | None, what: str) -> LegalAssistantError:
    """A supervised engine sent no byte for ENGINE_READ_TIMEOUT_S: fail it (the next
    request restarts it) and answer engine_wedged; the caller releases the lease."""
    if lease is None:
        return LegalAssistantError("timeout", f"{what}: no data within the read timeout")
    detail = (
        f"{lease.engine.ref.id} sent nothing for {lease.engine.settings.engine_read_timeout_s:g}s"
    )
    lease.engine.report_wedged(detail)
    return LegalAssistantError("engine_wedged", detail)


async def read_upstream(upstream: httpx.Response, lease: Lease | None) -> bytes:
    try:
        return await upstream.aread()
    except httpx.ReadTimeout as e:
        raise wedged(lease, str(upstream.url)) from e


async def iter_upstream(upstream: httpx.Response, lease: Lease | None) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.ReadTimeout as e:
        raise wedged(lease, str(upstream.url)) from e


def unmanaged_endpoint(state: AppState, ref: ModelRef) -> tuple[str, dict[str, str]]:
    """(base URL without `/v1`, headers) of a model the backend does not run: a configured
    OpenAI-compatible endpoint, or the Ollama daemon through its OpenAI-compatible API."""
    headers = {"Content-Type": "application/json"}
    if ref.provider == "ollama":
        return state.settings.ollama_url.rstrip("/"), headers
    for ep in state.settings.openai_endpoints:
        if ref.name in ep.models:
            if ep.api_key:
                headers["Authorization"] = f"Bearer {ep.api_key}"
            return ep.base_url.rstrip("/").removesuffix("/v1"), headers
    raise LegalAssistantError(
        "model_not_found",
        f"no configured OpenAI-compatible endpoint serves {ref.name!r}",
        message_fr=f"❌ Aucun point d'accès OpenAI configuré ne sert le modèle {ref.name}.",
        message_en=f"❌ No configured OpenAI-compatible endpoint serves {ref.name}.",
    )


class EngineCall:
    """One translated request's hold on the OpenAI-compatible server behind `ref`:

    1. `admit()` — the per-model admission slot (`busy` beyond the queue bound);
    2. `ready(tick)` — for a managed model, the engine lease (starting the engine if
       needed), yielding the engine's events and `None` every `tick` s meanwhile, so a
       stream can show each protocol's harmless keep-alive;
    3. `post(path, body)` — the upstream request, `model` rewritten to what the engine
       serves; non-2xx answers become `upstream_error` with the engine's message;
    4. `close(status)` — release the response, the lease and the slot, record the
       request duration; idempotent, and run by the response however it ends.
    """

    def __init__(self, state: AppState, ref: ModelRef, route: str) -> None:
        self.state = state
        self.ref = ref
        self.route = route
        self.t0 = time.perf_counter()
        self.lease: Lease | None = None
        self.ready_at: float | None = None  # perf_counter when the upstream was usable
        self._slot: contextlib.AbstractAsyncContextManager[None] | None = None
        self._upstream: httpx.Response | None = None
        self._closed = False
        # Set by the route when the client asked for loops to be cut (api/loop_guard.py).
        self.stop_loops = False

    async def admit(self, user_id: str) -> None:
        """`user_id`: who asks (principal_of(request).user_id): fair admission's queue."""
        slot = self.state.admission.slot(self.ref.id, user_id)
        await slot.__aenter__()  # raises "busy" (429) beyond the queue bound
        self._slot = slot

    @property
    def cold(self) -> bool:
        """True when the request will wait for an engine to start (or to be switched)."""
        if not self.ref.managed:
            return False
        engine = self.state.supervisor.engine_for(self.ref)
        return engine is None or not engine.is_available()

    async def ready(self, tick: float | None = None) -> AsyncGenerator[EngineEvent | None, None]:
        """Hold the engine; yields only while it is not ready yet (nothing when warm)."""
        if self.ref.managed and self.lease is None:
            if not self.cold:  # the common case: no task, no queue, no event
                self.lease = await self.state.supervisor.acquire(self.ref)
            else:
                events = self.state.supervisor.acquire_events(self.ref, tick=tick)
                async with contextlib.aclosing(events):
                    async for item in events:
                        if isinstance(item, Lease):
                            self.lease = item
                        else:
                            yield item
        self.ready_at = time.perf_counter()

    async def wait_ready(self) -> None:
        async for _ in self.ready():
            pass

    @property
    def load_s(self) -> float:
        """Seconds this request waited for its engine (Ollama's `load_duration`)."""
        return (self.ready_at or self.t0) - self.t0

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        if self.lease is not None:
            body["model"] = self.lease.engine.served_model
            url = f"{self.lease.engine.base_url}{path}"
            headers = {"Content-Type": "application/json"}
        else:
            base, headers = unmanaged_endpoint(self.state, self.ref)
            body["model"] = self.ref.name
            url = f"{base}{path}"
        if self._upstream is not None:
            await self._upstream.aclose()
        self._upstream = upstream = await send_upstream(
            self.state.gateway_http, url, body, headers, lease=self.lease
        )
        if upstream.status_code >= 400:
            raw = await read_upstream(upstream, self.lease)
            raise LegalAssistantError(
                "upstream_error",
                f"{self.ref.id} answered HTTP {upstream.status_code}: "
                f"{raw.decode(errors='replace')[:300]}",
            )
        return upstream

    async def json(self, path: str, body: dict[str, Any]) -> Any:
        """POST and decode a (non-streamed) JSON answer."""
        upstream = await self.post(path, body)
        raw = await read_upstream(upstream, self.lease)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise LegalAssistantError(
                "upstream_error", f"{self.ref.id} answered something else than JSON"
            ) from e

    async def batches(
        self, path: str, body: dict[str, Any]
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """POST a streamed request; yield its SSE `data:` payloads, decoded, one list per
        read from the engine (so a translated stream sends as many writes as the engine
        did, not one per event), until `[DONE]`. Lines are split at LF only: JSON data
        never holds a raw LF, while it may hold U+2028 & co. (model output), where
        `aiter_lines` would cut."""
        upstream = await self.post(path, {**body, "stream": True})
        counter = self.state.metrics.tokens.labels(self.ref.id)
        guard = ChunkGuard() if self.stop_loops else None
        pending = b""
        async for raw in iter_upstream(upstream, self.lease):
            pending += raw
            *lines, pending = pending.split(b"\n")
            batch: list[dict[str, Any]] = []
            done = False
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    continue  # not an event we can use; the engine's next one may be
                if isinstance(chunk, dict):
                    batch.append(chunk)
                    if guard is not None and guard.feed(chunk):
                        # Looping: end here as the engine would (the caller's close
                        # then closes the upstream request).
                        batch.append(guard.final_chunk(chunk))
                        done = True
                        break
            if batch:
                counter.inc(len(batch))
                yield batch
            if done:
                return

    async def close(self, status: int | None) -> None:
        """Release everything, once; `status` None: not recorded in the metrics."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._upstream is not None:
                await self._upstream.aclose()
        finally:
            if self.lease is not None:
                self.lease.release()
            if self._slot is not None:
                await self._slot.__aexit__(None, None, None)
            if status is not None:
                self.state.metrics.gateway_latency.labels(self.route, str(status)).observe(
                    time.perf_counter() - self.t0
                )
