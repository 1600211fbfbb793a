"""Supervisor: the only way callers get a ready engine.

`acquire(ref)` / `lease(ref)`, state by state of the target engine:
* ready                         → a lease at once: no await, no subscription, no event;
* preparing … loading, queued   → join the start attempt in progress (single flight);
* draining / stopping           → demand it: the runner starts it again after the stop;
* stopped / failed              → demand it: the runner resolves the model, asks the
                                  placement for room, starts it (failed: unless the
                                  crash-loop backoff holds — then its last error at once).

The supervisor keeps the engine records, the placement and the idle-TTL unloader; it
never changes an engine's state itself (see lifecycle.py: each engine's runner does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.config import Settings
from legal_assistant.engine_http import engine_client
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines import default_specs
from legal_assistant.runtime.engines.base import EngineSpec
from legal_assistant.runtime.events import EngineEvent, EventBus, Pulse
from legal_assistant.runtime.idle import IdleUnloader
from legal_assistant.runtime.lifecycle import Engine, EngineStopped, Lease
from legal_assistant.runtime.placement import Placement
from legal_assistant.runtime.registry import Registry, RegistryEntry
from legal_assistant.runtime.state import IDLE_STATES, PROCESS_STATES, EngineState

log = logging.getLogger("legal_assistant")

EventCallback = Callable[[EngineEvent], None]
# Stopped/failed engine records kept for the engine list (a typo in a model id must not
# stay there forever, nor grow the bookkeeping without bound).
_KEEP_IDLE_RECORDS = 8
# A caller whose engine became ready but was taken (a switch) before it could lease
# tries again, a bounded number of times.
_MAX_REJOINS = 4

__all__ = ["Engine", "EngineStopped", "Lease", "Supervisor"]


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        bus: EventBus | None = None,
        specs: dict[str, EngineSpec] | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.registry = (
            registry if registry is not None else Registry(Path(settings.data_dir) / "engines.json")
        )
        self.specs: dict[str, EngineSpec] = specs or default_specs()
        self._engines: dict[str, Engine] = {}
        self._pulse = Pulse()
        self._placement = Placement(settings, engines=self.engines, pulse=self._pulse, bus=self.bus)
        self._idle = IdleUnloader(engines=self.engines, pulse=self._pulse)
        self._http = engine_client()
        self._shutting_down = False
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ queries
    def engines(self) -> list[Engine]:
        return list(self._engines.values())

    def get(self, engine_id: str) -> Engine | None:
        return next((e for e in self._engines.values() if e.id == engine_id), None)

    def engine_for(self, ref: ModelRef) -> Engine | None:
        return self._engines.get(ref.id)

    def active(self, kind: str | None = None) -> list[Engine]:
        """Engines with a process (running, being spawned or stopped)."""
        return self._placement.resident(kind)

    def _engine(self, ref: ModelRef) -> Engine:
        engine = self._engines.get(ref.id)
        if engine is None:
            spec = self.specs.get(ref.provider)
            if spec is None:
                raise LegalAssistantError(
                    "unknown_provider", f"{ref.provider} models are not managed by the backend"
                )
            engine = Engine(
                ref, spec, self.settings, bus=self.bus, pulse=self._pulse,
                placement=self._placement, registry=self.registry, http=self._http,
            )  # fmt: skip
            self._engines[ref.id] = engine
            self._forget_idle_records()
        return engine

    def parallelism(self, model_id: str) -> int:
        """Requests the engine serving `model_id` answers at once; for a model served
        elsewhere (Ollama, an OpenAI endpoint), MAX_INFLIGHT_PER_ENGINE."""
        spec = self.specs.get(model_id.partition(":")[0])
        if spec is None:
            return self.settings.max_inflight_per_engine
        return spec.parallelism(self.settings)

    def _forget_idle_records(self) -> None:
        """Drop the oldest records that nothing uses: settled (stopped/failed), no caller
        waiting, no lease, no start or stop pending. A record a request waits on is
        never dropped (that would let a second engine start for the same model)."""
        idle = [
            e
            for e in self._engines.values()
            if e.state in IDLE_STATES
            and not e.busy
            and not e.start_pending
            and not e.is_stop_pending()
        ]
        for e in sorted(idle, key=lambda e: e.last_used)[: max(0, len(idle) - _KEEP_IDLE_RECORDS)]:
            del self._engines[e.ref.id]
            e.close()

    # ------------------------------------------------------------------ acquire
    async def ensure_ready(
        self, model: ModelRef | str, on_event: EventCallback | None = None
    ) -> Engine:
        """Return a ready engine for `model` (without holding it: see `lease`)."""
        lease = await self.acquire(model, on_event)
        lease.release()
        return lease.engine

    @contextlib.asynccontextmanager
    async def lease(
        self, model: ModelRef | str, on_event: EventCallback | None = None
    ) -> AsyncIterator[Lease]:
        """`async with supervisor.lease(ref) as lease:` — the engine stays up (no switch, no
        eviction, no idle unload) until the block ends."""
        held = await self.acquire(model, on_event)
        try:
            yield held
        finally:
            held.release()

    async def acquire(
        self,
        model: ModelRef | str,
        on_event: EventCallback | None = None,
        *,
        warm: bool = False,
    ) -> Lease:
        """A lease on a ready engine for `model`. `warm=True`: a background warm-up, which
        never drains or evicts a busy engine (`engine_busy` instead)."""
        ref = parse_model_id(model) if isinstance(model, str) else model
        if self._shutting_down:
            raise LegalAssistantError("shutting_down")
        engine = self._engine(ref)
        self._idle.start()
        lease = engine.try_lease(started=False, waited_s=0.0)
        if lease is not None:  # the common case
            return lease
        t0 = time.monotonic()
        sub = self.bus.subscribe() if on_event is not None else None
        try:
            if on_event is not None and engine.state not in IDLE_STATES:
                # Joining a start someone else began: show where it is now.
                on_event(
                    EngineEvent(engine.id, ref.id, engine.state, engine.state,
                                "joined a start in progress", phase=str(engine.state))
                )  # fmt: skip
            forward = (
                asyncio.create_task(_forward(sub.queue, engine.id, on_event))
                if sub is not None and on_event is not None
                else None
            )
            try:
                return await self._join(engine, t0, warm)
            finally:
                if forward is not None:
                    forward.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await forward
                if sub is not None and on_event is not None:
                    while not sub.queue.empty():  # deliver what is already published
                        ev = sub.queue.get_nowait()
                        if ev.engine == engine.id:
                            on_event(ev)
        finally:
            if sub is not None:
                sub.close()

    async def _join(self, engine: Engine, t0: float, warm: bool) -> Lease:
        for _ in range(_MAX_REJOINS):
            if self._shutting_down:
                raise LegalAssistantError("shutting_down")
            attempt = engine.demand(warm=warm)
            engine.add_waiter()
            try:
                # Shielded: a caller that goes away never aborts the start for the others.
                await asyncio.shield(attempt)
            finally:
                engine.remove_waiter()
            # Same synchronous step as the wake-up: nothing can take it in between.
            lease = engine.try_lease(started=True, waited_s=time.monotonic() - t0)
            if lease is not None:
                return lease
        raise LegalAssistantError(
            "switch_timeout", f"{engine.ref.id} was ready but taken by other switches each time"
        )

    async def acquire_events(
        self, model: ModelRef | str, *, tick: float | None = None, warm: bool = False
    ) -> AsyncGenerator[EngineEvent | Lease | None, None]:
        """`acquire` for a streaming caller: yields the engine's events as they happen
        (and `None` every `tick` seconds without one), then the Lease, last — the caller
        owns it from there. Raises the classified error if the start fails. Closing the
        iterator early ends only this wait: the start goes on for the others, and a lease
        won in that race is released. Use it inside `contextlib.aclosing`."""
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        task = asyncio.create_task(self.acquire(model, on_event=queue.put_nowait, warm=warm))
        handed = False
        try:
            while not task.done() or not queue.empty():
                if not queue.empty():
                    yield queue.get_nowait()
                    continue
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, task}, timeout=tick, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                if not done:
                    yield None  # a tick: nothing happened for `tick` seconds
            lease = task.result()
            handed = True
            yield lease
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            if not handed and task.done() and not task.cancelled() and task.exception() is None:
                task.result().release()

    # ------------------------------------------------------------------ keep alive
    def keep_alive(self, model: ModelRef | str, ttl_s: float | None) -> None:
        """Per-engine idle TTL from the end of its last lease: 0 = unload as soon as idle,
        < 0 = never, None = the configured default (Ollama's `keep_alive`)."""
        ref = parse_model_id(model) if isinstance(model, str) else model
        engine = self._engines.get(ref.id)
        if engine is not None:
            engine.set_keep_alive(ttl_s)
            self._idle.start()

    # ------------------------------------------------------------------ preload
    def preload(self, models: list[str]) -> asyncio.Task[None] | None:
        """Start `models` in the background (one after the other), without delaying the
        caller; failures are logged, not raised."""
        if not models:
            return None

        async def run() -> None:
            for model in models:
                try:
                    await self.ensure_ready(model)
                    log.info("Preloaded %s", model)
                except LegalAssistantError as err:
                    log.warning("Preload of %s failed: %s", model, err)

        return self.background(run(), name="preload")

    def background(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run a coroutine for the supervisor's lifetime (cancelled at shutdown)."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ------------------------------------------------------------------ stop
    async def stop(
        self, model: ModelRef | str | None = None, *, drain: bool = True, kind: str | None = None
    ) -> list[Engine]:
        """Stop one model's engine, or every engine (of `kind`). With `drain`, in-flight
        answers finish first (bounded); the engine takes no new request meanwhile.
        Callers waiting for one of these engines to start get `engine_stopped`."""
        if model is None:
            named = [e for e in self._engines.values() if kind is None or e.kind == kind]
        else:
            ref = parse_model_id(model) if isinstance(model, str) else model
            e = self._engines.get(ref.id)
            named = [e] if e is not None else []
        targets = [e for e in named if e.state is not EngineState.STOPPED or e.start_pending]
        # Ordered now, before any await: a start in progress (even one still resolving
        # its model, downloading or queued for room) ends; a later request starts again.
        done = [e.request_stop("user", drain=drain) for e in named]
        results = await asyncio.gather(*done, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, LegalAssistantError):
                raise r
        return targets

    async def stop_engine(self, engine_id: str) -> Engine | None:
        e = self.get(engine_id)
        if e is not None:
            await self.stop(e.ref)
        return e

    async def shutdown(self) -> list[Engine]:
        """Stop everything now (bounded: stop = graceful signal, grace, SIGKILL). Returns the
        engines that were running, for the shutdown log."""
        self._shutting_down = True
        self._idle.stop()
        for task in list(self._background):
            task.cancel()
        engines = list(self._engines.values())
        running = [e for e in engines if e.pid is not None or e.start_pending]
        stops = [e.request_stop("shutdown", drain=False) for e in engines]
        if stops:
            # Bounded: each stop is itself bounded (signal, grace, SIGKILL); this only
            # guards against a runner that can no longer answer (the loop being torn down).
            _, late = await asyncio.wait(stops, timeout=self.settings.stop_grace_s + 15.0)
            if late:
                log.warning("%d engine(s) did not confirm their stop at shutdown", len(late))
        for e in engines:
            e.close()
        await self._http.aclose()
        return running

    def residency(self) -> dict[str, object]:
        """The policy and the memory picture, as shown by /api/engines and the UI."""
        active = [e for e in self._engines.values() if e.state in PROCESS_STATES]
        return {
            "policy": self.settings.residency,
            "memory_budget_bytes": self.settings.memory_budget_bytes(),
            "memory_estimate_bytes": sum(e.memory_estimate() for e in active),
            "idle_ttl_s": self.settings.idle_ttl_s or None,
        }

    def reap_orphans(self) -> list[RegistryEntry]:
        return self.registry.reap_orphans(grace=self.settings.stop_grace_s)


async def _forward(
    queue: asyncio.Queue[EngineEvent], engine_id: str, on_event: EventCallback
) -> None:
    while True:
        ev = await queue.get()
        if ev.engine == engine_id:
            on_event(ev)
