"""Loops cut in the gateway, for clients that ask (docs/gateway.md#loops).

The gateway (`/v1`, `/v1/messages`, `/ollama/api`) passes an engine's stream through
untouched: a client of an OpenAI-compatible API expects the model's output, all of it.
A client that sends `X-Legal-Assistant-Stop-Loops: 1` opts into what chat turns do
(chat/degeneration.py): the streamed text is watched and, once it loops, the stream ends
with a normal finish (`finish_reason: "stop"`, which each protocol translates to its own
end) carrying `"stopped": "repetition"`, and the engine request is closed, freeing its
slot. What was already streamed stays streamed (the loop's first copies: a client that
shows text as it comes may trim it); the watcher decides from the text alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from legal_assistant.chat.degeneration import LoopWatcher

STOP_LOOPS_HEADER = "X-Legal-Assistant-Stop-Loops"
_YES = frozenset({"1", "true", "yes", "on"})


def wants_loops_stopped(request: Request) -> bool:
    return request.headers.get(STOP_LOOPS_HEADER, "").strip().lower() in _YES


class ChunkGuard:
    """Watches OpenAI chunks (chat deltas or completion texts) of one stream."""

    def __init__(self) -> None:
        self.watcher = LoopWatcher()

    def feed(self, chunk: Any) -> bool:
        """True once the text of the chunks fed so far loops."""
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return False
        delta = choices[0].get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choices[0].get("text")
        return isinstance(text, str) and self.watcher.feed(text) is not None

    @staticmethod
    def final_chunk(like: dict[str, Any]) -> dict[str, Any]:
        """The chunk that ends a cut stream, shaped like the engine's own (`like`)."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if "delta" in (like.get("choices") or [{}])[0]:
            choice["delta"] = {}
        else:
            choice["text"] = ""
        return {
            "id": like.get("id", "cut"),
            "object": like.get("object", "chat.completion.chunk"),
            "created": like.get("created", int(time.time())),
            "model": like.get("model", ""),
            "choices": [choice],
            "stopped": "repetition",
        }


async def guarded_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """An OpenAI SSE byte stream, passed on line by line until its text loops; then its
    end (a final chunk and `[DONE]`) instead of the rest. The caller closes the upstream
    response when this generator ends."""
    guard = ChunkGuard()
    pending = b""
    async for raw in chunks:
        pending += raw
        *lines, pending = pending.split(b"\n")
        out: list[bytes] = []
        for line in lines:
            out.append(line + b"\n")
            payload = line[5:].strip() if line.startswith(b"data:") else b""
            if not payload or payload == b"[DONE]":
                continue
            try:
                chunk = json.loads(payload)
            except ValueError:
                continue
            if guard.feed(chunk):
                end = json.dumps(guard.final_chunk(chunk), ensure_ascii=False)
                yield b"".join(out) + f"\ndata: {end}\n\ndata: [DONE]\n\n".encode()
                return
        if out:
            yield b"".join(out)
    if pending:
        yield pending
