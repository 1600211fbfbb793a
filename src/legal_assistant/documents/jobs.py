"""Progress of ingestion jobs, published to whoever follows a dossier.

`DossierEvents` is a small fan-out: each subscriber of a dossier gets its own bounded
queue. A subscriber that stops reading loses the oldest *progress* events first (the next
one supersedes them anyway), never a status change, so "ready" and "failed" always arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

_QUEUE_BOUND = 256


@dataclass(eq=False)  # identity: subscribers live in a set
class Subscription:
    """One follower of one dossier: iterate it for event payloads."""

    dossier_id: str
    _items: deque[dict[str, Any]] = field(default_factory=deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def push(self, payload: dict[str, Any]) -> None:
        if len(self._items) >= _QUEUE_BOUND:
            # Drop the oldest progress-only event (same status as the one after it).
            for i, old in enumerate(self._items):
                later = self._items[i + 1] if i + 1 < len(self._items) else payload
                if old.get("document_id") == later.get("document_id") and old.get(
                    "status"
                ) == later.get("status"):
                    del self._items[i]
                    break
            else:
                self._items.popleft()
        self._items.append(payload)
        self._wakeup.set()

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or None after `timeout` seconds without one."""
        while not self._items:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return None
        return self._items.popleft()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while not self.closed:
            item = await self.get()
            if item is not None:
                yield item


class DossierEvents:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    @contextlib.contextmanager
    def subscribe(self, dossier_id: str) -> Iterator[Subscription]:
        sub = Subscription(dossier_id)
        self._subscribers.setdefault(dossier_id, set()).add(sub)
        try:
            yield sub
        finally:
            sub.closed = True
            subs = self._subscribers.get(dossier_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[dossier_id]

    def publish(self, dossier_id: str, payload: dict[str, Any]) -> None:
        for sub in list(self._subscribers.get(dossier_id, ())):
            sub.push(payload)

    def subscribers(self, dossier_id: str) -> int:
        return len(self._subscribers.get(dossier_id, ()))


def document_event(
    document_id: str,
    status: str,
    *,
    stage: str | None = None,
    done: int = 0,
    total: int = 0,
    progress: float = 0.0,
    error: dict[str, Any] | None = None,
    filename: str | None = None,
) -> dict[str, Any]:
    """The payload of an `event: document` (API.md)."""
    return {
        "document_id": document_id,
        "filename": filename,
        "status": status,
        "stage": stage or status,
        "done": done,
        "total": total,
        "progress": round(progress, 4),
        "error": error,
    }
