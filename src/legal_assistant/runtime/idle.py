"""The idle-TTL unloader: engines idle for longer than their TTL are stopped.

It decides nothing itself that could race a request: it sends a stop order marked
`only_if_idle`, and the engine's runner checks, when it carries the order out, that the
engine is still ready, unused and expired — a request that arrived in between keeps it.
A failure here is logged and the loop goes on: it must never die silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from legal_assistant.runtime.events import Pulse

if TYPE_CHECKING:
    from legal_assistant.runtime.lifecycle import Engine

log = logging.getLogger("legal_assistant")


class IdleUnloader:
    def __init__(self, *, engines: Callable[[], list[Engine]], pulse: Pulse) -> None:
        self._engines = engines
        self._pulse = pulse
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="idle-ttl")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            try:
                next_in = self.sweep()
            except Exception:
                log.exception("Idle-TTL sweep failed; retrying")
                next_in = 1.0
            # Woken by any transition or released lease (re-armed), else at the expiry.
            await self._pulse.wait(next_in)

    def sweep(self) -> float | None:
        """Order expired engines to stop; return seconds until the next expiry."""
        next_in: float | None = None
        for engine in self._engines():
            expires = engine.idle_expires_in()
            if expires is None:
                continue
            if expires <= 0:
                ttl = engine.idle_ttl()
                log.info("Unloading %s after %.0fs idle", engine.ref.id, ttl or 0)
                engine.request_stop("idle", drain=False, only_if_idle=True)
            else:
                next_in = expires if next_in is None else min(next_in, expires)
        return next_in
