"""OpenAI-compatible gateway: `/v1/models`, `/v1/chat/completions`, `/v1/completions`.

Any OpenAI client (Open WebUI, editors, agents, the `openai` SDK) uses the supervised
models; the `model` field picks (and if needed starts or switches) the engine.

For managed engines the request is forwarded with only the `model` field rewritten to
what the engine serves — a client must never make mlx_lm.server load an arbitrary Hub
model — and the engine's bytes are streamed back as they arrive (no re-buffering, no
per-chunk re-encoding). The engine lease is held until the last byte, so a switch waits
for the stream; a client that disconnects closes the upstream request, so the engine stops
generating for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from legal_assistant.accounts.policy import check_model, model_allowed
from legal_assistant.accounts.principal import principal_of
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.api.loop_guard import guarded_sse, wants_loops_stopped
from legal_assistant.api.ollama_as_openai import ollama_as_openai
from legal_assistant.api.relay import (
    CleanupStream,
    iter_upstream,
    read_upstream,
    send_upstream,
    unmanaged_endpoint,
)
from legal_assistant.api.routes.models import build_catalog
from legal_assistant.api.state import AppState
from legal_assistant.catalog import EMBED_CATALOG, CatalogEntry, ModelRef, parse_model_id
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.lifecycle import Lease
from legal_assistant.runtime.model_traits import require_tool_calling

router = APIRouter(dependencies=[ApiKey])

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(err: LegalAssistantError) -> JSONResponse:
    status = err.http_status
    if err.code in ("unknown_provider", "model_not_found"):
        status = 404
    body = {
        "error": {
            "message": err.message_en + (f" ({err.detail})" if err.detail else ""),
            "type": _ERROR_TYPES.get(status, "server_error"),
            "code": err.code,
            "param": "model"
            if err.code in ("unknown_provider", "model_not_found", "invalid_model_id")
            else None,
        }
    }
    headers = err.headers or ({"Retry-After": "2"} if status == 429 else None)
    return JSONResponse(body, status_code=status, headers=headers)


@router.get("/v1/models")
async def v1_models(state: State, request: Request) -> dict[str, Any]:
    """The catalog; for a key with a model allowlist, its models only."""
    catalog = await build_catalog(state.settings, state.supervisor)
    data = [
        {
            "id": m["id"],
            "object": "model",
            "created": 0,
            "owned_by": m["provider"],
            "loaded": m["loaded"],
            "state": m["state"],
            "label": m["label"],
            "available_offline": m["available_offline"],
            # Tool calling and the context window (null: unknown), under the names
            # clients read: `context_length` (LM Studio, OpenRouter), `max_model_len`
            # (vLLM), `max_input_tokens` (Anthropic's models list, whose `type`,
            # `display_name` and `created_at` are here too: one list for both SDKs).
            "tools": m["tools"],
            "context_length": m["context_length"],
            "max_model_len": m["context_length"],
            "max_input_tokens": m["context_length"],
            "type": "model",
            "display_name": m["label"],
            "created_at": "1970-01-01T00:00:00Z",
        }
        for m in catalog["models"]
    ] + [embedding_entry(state, entry) for entry in EMBED_CATALOG]
    principal = principal_of(request)
    data = [m for m in data if model_allowed(principal, [m["id"]])]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


@router.get("/v1/models/{model_id:path}", response_model=None)
async def v1_model(model_id: str, state: State, request: Request) -> Response:
    """One entry of the list (OpenAI's and Anthropic's "retrieve model")."""
    listed = await v1_models(state, request)
    entry = next((m for m in listed["data"] if m["id"] == model_id), None)
    if entry is None:
        return openai_error(
            LegalAssistantError("model_not_found", f"{model_id[:120]!r} is not in /v1/models")
        )
    return JSONResponse(entry)


def embedding_entry(state: AppState, entry: CatalogEntry) -> dict[str, Any]:
    """An embedding model (POST /v1/embeddings), listed here but not in the chat picker."""
    engine = state.supervisor.engine_for(parse_model_id(entry.id))
    return {
        "id": entry.id,
        "object": "model",
        "created": 0,
        "owned_by": "embed",
        "type": "embedding",
        "loaded": bool(engine and str(engine.state) == "ready"),
        "state": str(engine.state) if engine else None,
        "label": entry.label_fr,
        "available_offline": True,
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request, state: State) -> Response:
    return await _gateway(request, state, "/v1/chat/completions")


@router.post("/v1/completions", response_model=None)
async def completions(request: Request, state: State) -> Response:
    return await _gateway(request, state, "/v1/completions")


async def _gateway(request: Request, state: AppState, path: str) -> Response:
    t0 = time.perf_counter()
    route = path.removeprefix("/v1/")  # "chat/completions" or "completions"
    try:
        body = _parse_body(await request.body())
        ref = parse_model_id(body["model"])
        check_model(principal_of(request), ref.id, body["model"])  # a key's model allowlist
        if ref.managed:
            _refuse_load_fields(body)
        if body.get("tools") and body.get("tool_choice") != "none":
            await require_tool_calling(ref, state.settings)
        stream = bool(body.get("stream"))
        if ref.provider == "ollama" and not _tool_use(body):
            if path != "/v1/chat/completions":
                raise LegalAssistantError("bad_request", "Ollama models: use /v1/chat/completions")
            return await ollama_as_openai(state, ref, body, stream)
        response = await _forward(request, state, ref, body, path, stream, t0, route)
    except LegalAssistantError as err:
        response = openai_error(err)
    if not isinstance(response, StreamingResponse):
        state.metrics.gateway_latency.labels(route, str(response.status_code)).observe(
            time.perf_counter() - t0
        )
    return response


def _tool_use(body: dict[str, Any]) -> bool:
    """Tools offered, or tool calls in the history: for an `ollama:` model, the daemon's
    own OpenAI API serves these (`ollama_as_openai` re-encodes text only)."""
    messages = body.get("messages")
    return bool(body.get("tools")) or any(
        isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls"))
        for m in (messages if isinstance(messages, list) else ())
    )


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise LegalAssistantError("bad_request", f"invalid JSON body: {e}") from e
    if not isinstance(body, dict):
        raise LegalAssistantError("bad_request", "the body must be a JSON object")
    if not isinstance(body.get("model"), str):
        raise LegalAssistantError("bad_request", "missing 'model' (e.g. mlx:smollm2-135m)")
    return body


# Request fields with which mlx_lm.server loads another model (it downloads whatever a
# Hub name there says): the backend alone chooses what an engine loads.
_LOAD_FIELDS = ("draft_model", "adapters")


def _refuse_load_fields(body: dict[str, Any]) -> None:
    for name in _LOAD_FIELDS:
        if name in body:
            raise LegalAssistantError(
                "bad_request",
                f"{name!r} is not accepted: the backend chooses what an engine loads",
            )


async def _forward(
    request: Request,
    state: AppState,
    ref: ModelRef,
    body: dict[str, Any],
    path: str,
    stream: bool,
    t0: float,
    route: str,
) -> Response:
    headers = {"Content-Type": "application/json"}
    slot = state.admission.slot(ref.id, principal_of(request).user_id)
    await slot.__aenter__()  # raises "busy" (429) beyond the queue bound
    lease: Lease | None = None
    upstream: httpx.Response | None = None
    released = False

    async def cleanup(status: int | None = 200) -> None:
        """Release everything; `status` None: `_gateway` records the request itself (a
        plain response or an error), so it is not counted twice."""
        nonlocal released
        if released:
            return
        released = True
        if upstream is not None:
            await upstream.aclose()
        if lease is not None:
            lease.release()
        await slot.__aexit__(None, None, None)
        if status is not None:
            state.metrics.gateway_latency.labels(route, str(status)).observe(
                time.perf_counter() - t0
            )

    try:
        if ref.managed:
            engine = state.supervisor.engine_for(ref)
            cold = engine is None or not engine.is_available()
            if stream and cold and state.settings.gateway_progress_comments:
                # Comments commit the response to 200: send them only once the start has
                # taken longer than a tick. A start that fails, or an engine that refuses
                # the request, before that gets its own HTTP status.
                acquiring = asyncio.ensure_future(state.supervisor.acquire(ref))
                try:
                    await asyncio.wait({acquiring}, timeout=state.settings.gateway_progress_tick_s)
                except asyncio.CancelledError:
                    acquiring.cancel()
                    raise
                if not acquiring.done():
                    return CleanupStream(
                        _progress_then_forward(
                            state,
                            ref,
                            body,
                            path,
                            headers,
                            t0,
                            acquiring,
                            wants_loops_stopped(request),
                        ),
                        cleanup,
                        send_timeout=state.settings.stream_send_timeout_s,
                        media_type="text/event-stream",
                        headers={"Cache-Control": "no-cache"},
                    )
                lease = acquiring.result()
            else:
                lease = await state.supervisor.acquire(ref)
            body["model"] = lease.engine.served_model
            url = f"{lease.engine.base_url}{path}"
        else:
            # A configured endpoint, or the Ollama daemon's own /v1 (tool use), under the
            # model name it knows.
            base, headers = unmanaged_endpoint(state, ref)
            body["model"] = ref.name
            url = f"{base}{path}"
        if not stream:

            async def answer() -> Response:
                nonlocal upstream
                upstream = await send_upstream(state.gateway_http, url, body, headers, lease=lease)
                content = await read_upstream(upstream, lease)
                return Response(
                    content,
                    status_code=upstream.status_code,
                    media_type=upstream.headers.get("content-type", "application/json"),
                )

            response = await _unless_client_leaves(request, answer())
            await cleanup(None)
            # None: the client left — nobody to answer, and the engine is free again.
            return response if response is not None else Response(status_code=499)
        upstream = await send_upstream(state.gateway_http, url, body, headers, lease=lease)
        status = upstream.status_code
        return CleanupStream(
            _relay(upstream, state, ref.id, lease, wants_loops_stopped(request)),
            lambda: cleanup(status),
            send_timeout=state.settings.stream_send_timeout_s,
            status_code=status,
            media_type=upstream.headers.get("content-type", "text/event-stream"),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    except BaseException:
        await cleanup(None)
        raise


async def _relay(
    upstream: httpx.Response,
    state: AppState,
    model: str,
    lease: Lease | None,
    stop_loops: bool = False,
) -> AsyncIterator[bytes]:
    counter = state.metrics.tokens.labels(model)
    # Untouched unless the client opted in to loops being cut (api/loop_guard.py).
    source = guarded_sse(iter_upstream(upstream, lease)) if stop_loops else None
    try:
        async for chunk in source or iter_upstream(upstream, lease):
            # Counting "data: " occurrences is cheap and needs no JSON decoding.
            counter.inc(chunk.count(b"data: "))
            yield chunk
    except LegalAssistantError as err:  # wedged mid-stream: the status is already sent
        payload = json.loads(bytes(openai_error(err).body))
        yield f"data: {json.dumps(payload)}\n\ndata: [DONE]\n\n".encode()


async def _unless_client_leaves(request: Request, work: Awaitable[Response]) -> Response | None:
    """`work`'s response, or None as soon as the client hangs up (a non-streamed answer
    must not hold its engine lease for a reader who is gone)."""

    async def client_left() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    working = asyncio.ensure_future(work)
    leaving = asyncio.ensure_future(client_left())
    try:
        await asyncio.wait({working, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        leaving.cancel()
        if not working.done():
            working.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await working
    if working.cancelled():
        return None
    return working.result()


async def _progress_then_forward(
    state: AppState,
    ref: ModelRef,
    body: dict[str, Any],
    path: str,
    headers: dict[str, str],
    t0: float,
    acquiring: asyncio.Future[Lease],
    stop_loops: bool,
) -> AsyncIterator[bytes]:
    """A long cold start with progress comments: SSE comment lines (ignored by OpenAI
    clients, never fake content) every tick while the engine starts, then the engine's
    stream. The status is already 200 here: a failure is reported in the stream, in
    OpenAI's error shape."""
    lease: Lease | None = None
    try:
        while not acquiring.done():
            engine = state.supervisor.engine_for(ref)
            phase = str(engine.state) if engine is not None else "starting"
            yield f": {phase} {ref.id} {time.perf_counter() - t0:.1f}s\n\n".encode()
            await asyncio.wait({acquiring}, timeout=state.settings.gateway_progress_tick_s)
        lease = acquiring.result()
    except LegalAssistantError as err:
        payload = json.loads(bytes(openai_error(err).body))
        yield f"data: {json.dumps(payload)}\n\ndata: [DONE]\n\n".encode()
        return
    finally:
        if not acquiring.done():  # the client left: the start goes on for the others
            acquiring.cancel()
            with contextlib.suppress(BaseException):
                won = await acquiring
                won.release()
    try:
        body["model"] = lease.engine.served_model
        upstream = await send_upstream(
            state.gateway_http, f"{lease.engine.base_url}{path}", body, headers, lease=lease
        )
        try:
            async for chunk in _relay(upstream, state, ref.id, lease, stop_loops):
                yield chunk
        finally:
            await upstream.aclose()
    finally:
        lease.release()
