"""Server-sent events helpers (sse-starlette does the wire format, pings, disconnects)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from sse_starlette.sse import EventSourceResponse


class Event(Protocol):
    """What a stream yields: an event name and its JSON payload (ChatEvent, BriefEvent...)."""

    @property
    def event(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...


def sse(events: AsyncIterator[Event], *, send_timeout: float = 30.0) -> EventSourceResponse:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        try:
            async for ev in events:
                yield {"event": ev.event, "data": json.dumps(ev.data, ensure_ascii=False)}
        finally:
            # A send timeout or a disconnect ends this generator: close the inner one now,
            # so its lease is released and its partial answer saved at once, not whenever
            # the garbage collector gets to it.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    # send_timeout: a client that stops reading must not hold the engine lease forever.
    return EventSourceResponse(gen(), ping=15, send_timeout=send_timeout)
