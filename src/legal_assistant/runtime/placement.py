"""Placement: may this engine start now, and what must make room for it?

Separate from the lifecycle, and holding no lock: each decision is one synchronous look
at the engines (`_decide`); when the answer is "not yet", the asking engine's runner
sends stop orders to the victims and waits for the next pulse (a transition, a lease
released), then decides again. So one kind's start never delays another kind's
placement, a Stop, or the idle-TTL unloader, and nothing is held across a drain, a
download or a memory wait.

Policies:
* "swap"   — one engine per kind (the seed's behaviour): the resident engine of the kind
             is drained (its answers finish) and stopped. One that is still starting, or
             whose callers have not taken their leases yet, is let through first, so
             alternating requests are served in turn instead of cancelling each other.
* "budget" — engines stay while their estimated memory fits the budget; the least
             recently used idle engine is evicted first, never a busy one (wait for one
             to become idle instead, bounded by drain_timeout_s).
A warm-up never evicts a busy engine: it gives up with `engine_busy`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.events import EngineEvent, EventBus, Pulse
from legal_assistant.runtime.memory import memory_available
from legal_assistant.runtime.state import PROCESS_STATES, EngineState

if TYPE_CHECKING:
    from legal_assistant.runtime.lifecycle import Engine

log = logging.getLogger("legal_assistant")
S = EngineState
# Re-decide at least this often even without a pulse (a process that dies unseen).
_RECHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class _Wait:
    why: str
    # Shown to the waiting user ("queued") only when something they would understand
    # holds the start: answers in flight, a full memory budget.
    visible: bool = False


@dataclass(frozen=True, slots=True)
class _Evict:
    victims: list[Engine]
    reason: str


class Placement:
    def __init__(
        self,
        settings: Settings,
        *,
        engines: Callable[[], list[Engine]],
        pulse: Pulse,
        bus: EventBus,
    ) -> None:
        self.settings = settings
        self._engines = engines
        self._pulse = pulse
        self._bus = bus

    def resident(self, kind: str | None = None) -> list[Engine]:
        """Engines that hold (or are about to hold) memory: a process runs or is being
        spawned or stopped."""
        return [
            e
            for e in self._engines()
            if e.state in PROCESS_STATES and (kind is None or e.kind == kind)
        ]

    async def admit(self, engine: Engine) -> None:
        """Return when `engine` may start. Raises `switch_timeout` (budget full of busy
        engines, or a drain that timed out) or `engine_busy` (a warm-up that would have to
        evict a busy engine)."""
        deadline = time.monotonic() + self.settings.drain_timeout_s
        waited_for_memory = False
        last_why = ""
        drains: list[asyncio.Future[None]] = []  # stops we ordered for this placement
        while True:
            _raise_drain_failure(drains)
            decision = self._decide(engine, deadline)
            if decision is None:
                need = engine.memory_estimate()
                if not waited_for_memory and psutil.virtual_memory().available < need:
                    waited_for_memory = True
                    await memory_available(need)
                    continue  # decide again: things moved while we waited
                return  # no await between this decision and the caller's STARTING
            if isinstance(decision, _Evict):
                for victim in decision.victims:
                    log.info("Evicting %s (%s) for %s", victim.ref.id, decision.reason,
                             engine.ref.id)  # fmt: skip
                    stopped = victim.request_stop(decision.reason, drain=True)
                    stopped.add_done_callback(lambda _: self._pulse.fire())
                    drains.append(stopped)
                busy = [v for v in decision.victims if v.inflight]
                decision = _Wait(
                    f"waiting for {sum(v.inflight for v in busy)} answer(s) on {busy[0].ref.id}"
                    if busy
                    else "waiting for the previous model to stop",
                    visible=bool(busy),
                )
            if decision.visible and decision.why != last_why:
                last_why = decision.why
                self._queued(engine, decision.why)
            await self._pulse.wait(_RECHECK_S)

    # ------------------------------------------------------------------ decisions
    def _decide(self, engine: Engine, deadline: float) -> _Wait | _Evict | None:
        if self.settings.residency == "swap":
            return self._decide_swap(engine)
        return self._decide_budget(engine, deadline)

    def _decide_swap(self, engine: Engine) -> _Wait | _Evict | None:
        others = [e for e in self.resident(engine.kind) if e is not engine]
        if not others:
            return None
        ready = []
        for other in others:
            if other.state in (S.STARTING, S.LOADING) or other.waiters:
                return _Wait(f"letting the start of {other.ref.id} finish")
            if other.state is S.READY:
                ready.append(other)
        busy = [o for o in ready if o.busy]
        if busy and engine.warm_only:
            raise _busy(engine, busy[0])
        if ready:
            return _Evict(ready, "switch")
        draining = [o for o in others if o.inflight]
        if draining:
            n = sum(o.inflight for o in draining)
            return _Wait(f"waiting for {n} answer(s) on {draining[0].ref.id}", visible=True)
        return _Wait(f"waiting for {others[0].ref.id} to stop")

    def _decide_budget(self, engine: Engine, deadline: float) -> _Wait | _Evict | None:
        budget = self.settings.memory_budget_bytes()
        need = engine.memory_estimate()
        others = [e for e in self.resident() if e is not engine]
        used = sum(e.memory_estimate() for e in others)
        if used + need <= budget or not others:
            return None
        if any(o.state in (S.DRAINING, S.STOPPING) for o in others):
            return _Wait("waiting for memory: an engine is stopping")
        idle = [o for o in others if o.state is S.READY and not o.busy]
        if idle:
            return _Evict([min(idle, key=lambda o: o.last_used)], "evicted")
        if engine.warm_only:
            raise _busy(engine, others[0])
        if time.monotonic() > deadline:
            raise LegalAssistantError(
                "switch_timeout",
                f"memory budget {budget / 1024**3:.1f} GB is full with engines that are "
                f"answering; {engine.ref.id} needs {need / 1024**3:.2f} GB",
            )
        return _Wait("waiting for memory: every loaded engine is answering", visible=True)

    # ------------------------------------------------------------------ helpers
    def _queued(self, engine: Engine, why: str) -> None:
        self._bus.publish(
            EngineEvent(engine.id, engine.ref.id, engine.state, engine.state, why, phase="queued")
        )


def _raise_drain_failure(drains: list[asyncio.Future[None]]) -> None:
    """A victim whose drain timed out (policy "error") fails this placement."""
    for fut in drains:
        if fut.done() and not fut.cancelled():
            exc = fut.exception()
            if isinstance(exc, LegalAssistantError):
                raise exc


def _busy(engine: Engine, other: Engine) -> LegalAssistantError:
    return LegalAssistantError(
        "engine_busy",
        f"warming {engine.ref.id} would stop {other.ref.id}, which is answering",
    )
