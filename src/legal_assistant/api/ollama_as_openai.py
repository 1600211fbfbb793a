"""`/v1/chat/completions` for an `ollama:` model: the Ollama daemon speaks its own protocol,
so its answer is re-encoded as OpenAI chunks here — the one gateway path where bytes are
not relayed as they come (managed engines and OpenAI endpoints are, see `relay.py`)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse

from legal_assistant.api.state import AppState
from legal_assistant.catalog import ModelRef
from legal_assistant.providers import OllamaProvider, StreamItem, TokenDelta, Usage


async def ollama_as_openai(
    state: AppState, ref: ModelRef, body: dict[str, Any], stream: bool
) -> Response:
    """The Ollama daemon's answer to an OpenAI chat request, streamed or whole."""
    provider: OllamaProvider = state.chat.ollama
    messages = [
        {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
        for m in body.get("messages", [])
        if isinstance(m, dict)
    ]
    gen = provider.stream_chat(
        messages,
        model=ref.name,
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
    )
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": ref.id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    if not stream:
        parts: list[str] = []
        usage: Usage | None = None
        async with contextlib.aclosing(gen):
            async for item in gen:
                if isinstance(item, TokenDelta):
                    parts.append(item.content)
                elif isinstance(item, Usage):
                    usage = item
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": ref.id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(usage),
            }
        )

    # Pull the first item before answering 200, so "Ollama is not running" is a real error.
    first: StreamItem | None = None
    with contextlib.suppress(StopAsyncIteration):
        first = await gen.__anext__()
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def sse() -> AsyncIterator[bytes]:
        counter = state.metrics.tokens.labels(ref.id)
        usage: Usage | None = None
        async with contextlib.aclosing(gen):
            pending = [first] if first is not None else []

            async def items() -> AsyncIterator[StreamItem]:
                for p in pending:
                    yield p
                async for it in gen:
                    yield it

            async for item in items():
                if isinstance(item, TokenDelta):
                    counter.inc()
                    data = chunk({"content": item.content}, None)
                    yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
                elif isinstance(item, Usage):
                    usage = item
        yield f"data: {json.dumps(chunk({}, 'stop'))}\n\n".encode()
        if include_usage:
            final = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": ref.id,
                "choices": [],
                "usage": _usage(usage),
            }
            yield f"data: {json.dumps(final)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream")


def _usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total,
    }
