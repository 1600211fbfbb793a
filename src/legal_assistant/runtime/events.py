"""Engine events: every state transition (and progress inside a phase) is published here.

Subscribers (the chat stream, `/api/engines/events`, the CLI spinner) each get a bounded
queue; a subscriber that stops reading loses its oldest events instead of making the
supervisor wait — a slow browser tab must never block an engine start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

from legal_assistant.runtime.state import EngineState


@dataclass(frozen=True, slots=True)
class EngineEvent:
    engine: str  # engine id, e.g. "mlx-1"
    model: str  # model id, e.g. "mlx:smollm2-135m"
    old: EngineState
    new: EngineState
    detail: str = ""
    # Phase inside a state when it is finer than the state: "queued", "preparing",
    # "downloading", "starting", "loading", "ready", "failed", "stopping", "stopped".
    phase: str = ""
    progress: float | None = None
    error_code: str | None = None
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["old"] = str(self.old)
        data["new"] = str(self.new)
        return data


class EventBus:
    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[asyncio.Queue[EngineEvent]] = set()
        self._queue_size = queue_size

    def publish(self, event: EngineEvent) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                # Drop the oldest: status is about "now", not a complete history.
                queue.get_nowait()
            queue.put_nowait(event)

    def subscribe(self) -> Subscription:
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return Subscription(self, queue)

    def _unsubscribe(self, queue: asyncio.Queue[EngineEvent]) -> None:
        self._subscribers.discard(queue)


class Subscription:
    """`with bus.subscribe() as sub: async for event in sub: ...`"""

    def __init__(self, bus: EventBus, queue: asyncio.Queue[EngineEvent]) -> None:
        self._bus = bus
        self.queue = queue

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._bus._unsubscribe(self.queue)

    def __aiter__(self) -> AsyncIterator[EngineEvent]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[EngineEvent]:
        while True:
            yield await self.queue.get()


class Pulse:
    """A broadcast "something changed" signal (a transition, a lease released, a waiter
    gone): `await pulse.wait(timeout)` returns at the next `fire()`. Placement and the idle
    TTL re-decide on it instead of polling."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
