"""Per-model admission: at most `max_active` requests run on an engine, at most
`max_queue` wait behind them; beyond that the caller is told to come back later (HTTP 429
with Retry-After) instead of piling up unboundedly inside the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from legal_assistant.errors import LegalAssistantError


class _Gate:
    def __init__(self, max_active: int) -> None:
        self.semaphore = asyncio.Semaphore(max_active)
        self.waiting = 0
        self.active = 0


class Admission:
    def __init__(self, max_active: int, max_queue: int) -> None:
        self.max_active = max(1, max_active)
        self.max_queue = max(0, max_queue)
        self._gates: dict[str, _Gate] = {}

    def _gate(self, key: str) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(self.max_active)
        return gate

    def tracked(self) -> int:
        """Model ids with a gate right now (only those with requests running or queued)."""
        return len(self._gates)

    def load(self, key: str) -> tuple[int, int]:
        gate = self._gates.get(key)
        return (gate.active, gate.waiting) if gate else (0, 0)

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        gate = self._gate(key)
        if gate.semaphore.locked() and gate.waiting >= self.max_queue:
            raise LegalAssistantError(
                "busy",
                f"{gate.active} running and {gate.waiting} queued for {key}",
            )
        gate.waiting += 1
        try:
            await gate.semaphore.acquire()
        except BaseException:
            gate.waiting -= 1
            if gate.active == 0 and gate.waiting == 0 and self._gates.get(key) is gate:
                del self._gates[key]
            raise
        gate.waiting -= 1
        gate.active += 1
        try:
            yield
        finally:
            gate.active -= 1
            gate.semaphore.release()
            if gate.active == 0 and gate.waiting == 0 and self._gates.get(key) is gate:
                # One gate per model id ever seen would grow without bound.
                del self._gates[key]
