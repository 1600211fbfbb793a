"""Server-sent events helpers (sse-starlette does the wire format, pings, disconnects)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse

from legal_assistant.chat.service import ChatEvent


def sse(events: AsyncIterator[ChatEvent], *, send_timeout: float = 30.0) -> EventSourceResponse:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        async for ev in events:
            yield {"event": ev.event, "data": json.dumps(ev.data, ensure_ascii=False)}

    # send_timeout: a client that stops reading must not hold the engine lease forever.
    return EventSourceResponse(gen(), ping=15, send_timeout=send_timeout)
