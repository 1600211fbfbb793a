"""Anthropic Messages API: `POST /v1/messages` (streamed or not) and
`POST /v1/messages/count_tokens`, served by the supervised engines' OpenAI chat API.

Claude Code and other Anthropic clients take the backend's URL as their base URL and a
model id (`mlx:smollm2-135m`, or its Ollama-style name) as the model. Everything the
OpenAI gateway guarantees holds: admission per model, a lease held until the last byte
(a switch waits for the answer), the upstream request closed when the client leaves.

While a cold engine starts, a stream receives `ping` events (every second, and at each
lifecycle step): Anthropic clients skip them, so nothing is rendered, and the connection
is visibly alive. The stream opens with `message_start` and the text block's start at
once, as Anthropic's does; the input token count, known only when the engine answers,
comes in the final `message_delta`.

Refusals — bad key included — have Anthropic's error shape, so the SDK raises its typed
errors (`NotFoundError` for an unknown model, `BadRequestError` for an image block...).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from legal_assistant.accounts.policy import check_model
from legal_assistant.accounts.principal import principal_of
from legal_assistant.api.deps import State, require_api_key
from legal_assistant.api.loop_guard import wants_loops_stopped
from legal_assistant.api.relay import CleanupStream, EngineCall
from legal_assistant.api.state import AppState
from legal_assistant.catalog import EMBEDDING_PROVIDERS, ModelRef, resolve_model_name
from legal_assistant.errors import LegalAssistantError
from legal_assistant.gateway.anthropic import (
    MessagesRequest,
    error_body,
    error_status,
    invalid,
    parse_request,
)
from legal_assistant.gateway.anthropic_reply import PING, MessageBuilder, error_event
from legal_assistant.runtime.model_traits import require_tool_calling

# Auth is checked inside the handlers (not as a router dependency) so that a refusal has
# Anthropic's error shape rather than the rest of the API's. Not in our OpenAPI schema:
# the protocol and its error shapes are Anthropic's (docs/gateway.md), not ErrorResponse.
router = APIRouter(include_in_schema=False)

CHAT = "/v1/chat/completions"
PING_EVERY_S = 1.0


def anthropic_error(err: LegalAssistantError) -> JSONResponse:
    status = error_status(err)
    headers = err.headers or ({"Retry-After": "2"} if status == 429 else None)
    return JSONResponse(error_body(err), status_code=status, headers=headers)


async def _request(
    request: Request, state: AppState, *, count_only: bool = False
) -> tuple[MessagesRequest, ModelRef]:
    require_api_key(request)
    try:
        body = json.loads(await request.body())
    except ValueError as e:
        raise invalid(f"the body is not valid JSON: {e}") from e
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    req = parse_request(body, count_only=count_only)
    ref = resolve_model_name(req.model)
    check_model(principal_of(request), ref.id, req.model)  # a key's model allowlist
    if ref.provider in EMBEDDING_PROVIDERS:
        raise invalid(f"{req.model[:120]} is an embedding model: it cannot answer messages")
    if req.uses_tools:
        await require_tool_calling(ref, state.settings)
    return req, ref


def _refused(state: AppState, route: str, t0: float, err: LegalAssistantError) -> JSONResponse:
    response = anthropic_error(err)
    state.metrics.gateway_latency.labels(route, str(response.status_code)).observe(
        time.perf_counter() - t0
    )
    return response


@router.post("/v1/messages", response_model=None)
async def messages(request: Request, state: State) -> Response:
    t0 = time.perf_counter()
    try:
        req, ref = await _request(request, state)
        call = EngineCall(state, ref, "messages")
        call.stop_loops = wants_loops_stopped(request)
        await call.admit(principal_of(request).user_id)
    except LegalAssistantError as err:
        return _refused(state, "messages", t0, err)
    builder = MessageBuilder(req.model, req.stop_sequences, tools=req.uses_tools)
    body = {**req.openai, "stream_options": {"include_usage": True}}
    if req.stream:
        return CleanupStream(
            _events(call, builder, body),
            lambda: call.close(200),
            send_timeout=state.settings.stream_send_timeout_s,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    status = 200
    try:
        await call.wait_ready()
        async for _ in _deltas(call, builder, body):
            pass
        bad = builder.bad_tool_call()
        if bad is not None:
            raise LegalAssistantError("upstream_error", f"{ref.id}: {bad}")
        return JSONResponse(builder.message())
    except LegalAssistantError as err:
        response = anthropic_error(err)
        status = response.status_code
        return response
    finally:
        await call.close(status)


async def _deltas(
    call: EngineCall, builder: MessageBuilder, body: dict[str, Any]
) -> AsyncGenerator[bytes, None]:
    """The engine's answer as content block events; ends (closing the upstream request, so
    the engine stops) at a stop sequence."""
    async with contextlib.aclosing(call.batches(CHAT, body)) as batches:
        async for batch in batches:
            out = b"".join(builder.feed(chunk) for chunk in batch)
            if out:
                yield out
            if builder.stopped:
                break


async def _events(
    call: EngineCall, builder: MessageBuilder, body: dict[str, Any]
) -> AsyncIterator[bytes]:
    yield builder.start()
    try:
        async with contextlib.aclosing(call.ready(tick=PING_EVERY_S)) as waits:
            async for _ in waits:
                yield PING
        async with contextlib.aclosing(_deltas(call, builder, body)) as deltas:
            async for out in deltas:
                yield out
    except LegalAssistantError as err:
        payload = error_body(err)["error"]
        yield error_event(payload["type"], payload["message"])
        return
    yield builder.finish()


@router.post("/v1/messages/count_tokens", response_model=None)
async def count_tokens(request: Request, state: State) -> Response:
    """The prompt's token count as the engine itself counts it (its tokenizer and chat
    template): a one-token completion whose `usage.prompt_tokens` is the answer. Exact
    for any engine, at the cost of a prefill — and of starting the engine when cold."""
    t0 = time.perf_counter()
    try:
        req, ref = await _request(request, state, count_only=True)
        call = EngineCall(state, ref, "messages/count_tokens")
        await call.admit(principal_of(request).user_id)
    except LegalAssistantError as err:
        return _refused(state, "messages/count_tokens", t0, err)
    status = 200
    try:
        await call.wait_ready()
        data = await call.json(CHAT, {**req.openai, "max_tokens": 1, "stream": False})
        usage = data.get("usage") if isinstance(data, dict) else None
        if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
            raise LegalAssistantError("upstream_error", f"{ref.id} reported no token usage")
        return JSONResponse({"input_tokens": usage["prompt_tokens"]})
    except LegalAssistantError as err:
        response = anthropic_error(err)
        status = response.status_code
        return response
    finally:
        await call.close(status)
