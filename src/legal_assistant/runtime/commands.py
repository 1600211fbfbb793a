"""The commands callers hand an engine's runner, and the lease a request holds.

Kept apart from lifecycle.py (the Engine and its runner access) so that module stays
readable in one sitting; nothing here changes engine state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from legal_assistant.errors import LegalAssistantError

if TYPE_CHECKING:
    from legal_assistant.runtime.lifecycle import Engine


class EngineStopped(LegalAssistantError):
    """The start (or the wait for it) was ended because the engine was asked to stop."""

    def __init__(self, detail: str = "the engine was stopped") -> None:
        super().__init__("engine_stopped", detail)


class Lease:
    """One in-flight request on a ready engine. A switch, an eviction or the idle TTL
    waits until every lease is released; release it exactly once (`async with
    supervisor.lease(...)`, or `release()`, which is idempotent)."""

    def __init__(self, engine: Engine, *, started: bool, waited_s: float) -> None:
        self.engine = engine
        self.started = started  # True if this call caused (or joined) a start
        self.waited_s = waited_s
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.engine.end_lease()


@dataclass(slots=True)
class StopOrder:
    reason: str  # user, switch, evicted, idle, shutdown, wedged
    drain: bool
    only_if_idle: bool = False
    fail_with: LegalAssistantError | None = None  # wedged: end as FAILED with this
    done: list[asyncio.Future[None]] = field(default_factory=list)


def consume_exception(fut: asyncio.Future[Any]) -> None:
    """A future nobody awaits any more must not log "exception never retrieved"."""
    if not fut.cancelled():
        fut.exception()
