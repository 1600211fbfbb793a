"""Supervisor: the only way callers get a ready engine.

`acquire(ref)` / `lease(ref)`, state by state of the target engine:
* ready (and not draining) → a lease at once, no await, no event;
* starting / loading      → wait for the running start with everyone else (single flight);
* stopping                → wait for the stop, then start;
* stopped / failed        → make room under the residency policy, then start.

Making room (policy "swap": one engine per kind, the seed's behaviour) means: mark the
resident engine draining so it takes no new requests, wait (bounded) for its in-flight
answers to finish, stop it, then start the new one. Placement decisions are serialized
by one lock; waiting for a start happens outside it, so joining a start is never blocked
by another placement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engine import Engine, EngineStopped, Lease
from legal_assistant.runtime.engines.base import EngineSpec
from legal_assistant.runtime.engines.mlx import MLXSpec
from legal_assistant.runtime.events import EngineEvent, EventBus
from legal_assistant.runtime.registry import Registry, RegistryEntry
from legal_assistant.runtime.state import ACTIVE_STATES, EngineState

EventCallback = Callable[[EngineEvent], None]


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
        self.specs: dict[str, EngineSpec] = specs or {"mlx": MLXSpec()}
        self._engines: dict[str, Engine] = {}
        self._placement = asyncio.Lock()
        self._http = httpx.AsyncClient(trust_env=False)
        self._shutting_down = False
        # engine id -> number of explicit stop() calls; a caller waiting for a start that
        # an explicit stop cancelled gives up instead of restarting the stopped engine.
        self._stop_requests: dict[str, int] = {}

    # ------------------------------------------------------------------ queries
    def engines(self) -> list[Engine]:
        return list(self._engines.values())

    def get(self, engine_id: str) -> Engine | None:
        return next((e for e in self._engines.values() if e.id == engine_id), None)

    def engine_for(self, ref: ModelRef) -> Engine | None:
        return self._engines.get(ref.id)

    def active(self, kind: str | None = None) -> list[Engine]:
        return [
            e
            for e in self._engines.values()
            if e.state in ACTIVE_STATES and (kind is None or e.kind == kind)
        ]

    def _engine(self, ref: ModelRef) -> Engine:
        engine = self._engines.get(ref.id)
        if engine is None:
            spec = self.specs.get(ref.provider)
            if spec is None:
                raise LegalAssistantError(
                    "unknown_provider", f"{ref.provider} models are not managed by the backend"
                )
            engine = Engine(
                ref, spec, self.settings, bus=self.bus, registry=self.registry, http=self._http
            )
            self._engines[ref.id] = engine
            self._forget_idle_records()
        return engine

    def _forget_idle_records(self, keep: int = 8) -> None:
        """Keep the records of at most `keep` stopped/failed engines (a typo in a model id
        must not stay in the engine list forever)."""
        idle = [
            e
            for e in self._engines.values()
            if e.state in (EngineState.STOPPED, EngineState.FAILED)
            and e.starting is None
            and e.inflight == 0
        ]
        for e in sorted(idle, key=lambda e: e.last_used)[: max(0, len(idle) - keep)]:
            del self._engines[e.ref.id]

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
        eviction) until the block ends."""
        held = await self.acquire(model, on_event)
        try:
            yield held
        finally:
            held.release()

    async def acquire(self, model: ModelRef | str, on_event: EventCallback | None = None) -> Lease:
        ref = parse_model_id(model) if isinstance(model, str) else model
        if self._shutting_down:
            raise LegalAssistantError("shutting_down")
        engine = self._engine(ref)
        t0 = time.monotonic()
        if engine.is_available():  # the common case: no await, no subscription, no event
            return engine.lease(started=False, waited_s=0.0)

        sub = self.bus.subscribe() if on_event is not None else None
        forward: asyncio.Task[None] | None = None
        if sub is not None and on_event is not None:
            if engine.state in (EngineState.STARTING, EngineState.LOADING):
                # Joining a start someone else began: show where it is now.
                on_event(
                    EngineEvent(
                        engine.id,
                        ref.id,
                        engine.state,
                        engine.state,
                        "joined a start in progress",
                        phase=engine.phase,
                    )
                )
            forward = asyncio.create_task(_forward(sub.queue, engine.id, on_event))
        try:
            return await self._acquire_slow(engine, t0, on_event)
        finally:
            if forward is not None and sub is not None and on_event is not None:
                forward.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await forward
                while not sub.queue.empty():  # deliver what is already published
                    ev = sub.queue.get_nowait()
                    if ev.engine == engine.id:
                        on_event(ev)
                sub.close()

    async def _acquire_slow(
        self, engine: Engine, t0: float, on_event: EventCallback | None
    ) -> Lease:
        started = False
        abandoned = 0
        while True:
            if self._shutting_down:
                raise LegalAssistantError("shutting_down")
            if engine.is_available():
                return engine.lease(started=started, waited_s=time.monotonic() - t0)
            task = engine.starting
            if task is None:
                async with self._placement:
                    if engine.is_available() or engine.starting is not None:
                        continue
                    if engine.state in (EngineState.STOPPED, EngineState.FAILED):
                        await engine.preflight()
                    await self._make_room(engine, on_event)
                    if engine.state is EngineState.STOPPING:
                        await engine.stop()
                    if engine.state in (EngineState.STOPPED, EngineState.FAILED):
                        task = engine.begin_start()
                    else:
                        continue
            started = True
            stops = self._stop_requests.get(engine.id, 0)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller went away; the start goes on for the others
                abandoned += 1  # the start itself was cancelled (stopped by someone)
                if self._stop_requests.get(engine.id, 0) != stops:
                    raise EngineStopped(
                        "engine_crashed", "the engine was stopped during start"
                    ) from None
                if abandoned > 3:
                    raise EngineStopped(
                        "engine_crashed", "the engine was stopped during start"
                    ) from None
            except EngineStopped:
                abandoned += 1
                if abandoned > 3:
                    raise

    async def _make_room(self, engine: Engine, on_event: EventCallback | None) -> None:
        """Residency policy "swap": at most one engine per kind. Drain, then stop, the
        resident one — never while it is answering (bounded by drain_timeout_s)."""
        others = [e for e in self.active(engine.kind) if e is not engine]
        if not others:
            return
        for other in others:
            # Let a start others are waiting for finish first: its waiters (registered on
            # the task before us) take their leases, then we drain them. Cancelling it
            # instead would make alternating requests cancel each other's starts forever.
            start = other.starting
            if start is not None:
                try:
                    await asyncio.shield(start)
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
                except Exception:
                    pass  # its failure is its waiters' news; we only needed it settled
        for other in others:
            other.draining = True
        try:
            for other in others:
                if other.inflight and on_event is not None:
                    on_event(
                        EngineEvent(
                            engine.id,
                            engine.ref.id,
                            engine.state,
                            engine.state,
                            f"waiting for {other.inflight} answer(s) on {other.ref.id}",
                            phase="queued",
                        )
                    )
                idle = await other.wait_idle(self.settings.drain_timeout_s)
                if not idle and self.settings.drain_policy == "error":
                    raise LegalAssistantError(
                        "switch_timeout",
                        f"{other.ref.id} still has {other.inflight} request(s) in flight after "
                        f"{self.settings.drain_timeout_s:.0f}s",
                    )
            await asyncio.gather(*(other.stop() for other in others))
        finally:
            for other in others:
                other.draining = False

    # ------------------------------------------------------------------ stop
    async def stop(
        self, model: ModelRef | str | None = None, *, drain: bool = True
    ) -> list[Engine]:
        """Stop one model's engine (or all). With `drain`, wait for in-flight answers first
        (bounded); the engine takes no new request meanwhile."""
        if model is None:
            targets = self.active()
        else:
            ref = parse_model_id(model) if isinstance(model, str) else model
            e = self._engines.get(ref.id)
            targets = [e] if e is not None and e.state is not EngineState.STOPPED else []
        async with self._placement:
            for e in targets:
                e.draining = True
            try:
                if drain:
                    await asyncio.gather(
                        *(e.wait_idle(self.settings.drain_timeout_s) for e in targets)
                    )
                for e in targets:
                    self._stop_requests[e.id] = self._stop_requests.get(e.id, 0) + 1
                await asyncio.gather(*(e.stop() for e in targets))
            finally:
                for e in targets:
                    e.draining = False
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
        running = [e for e in self._engines.values() if e.pid is not None or e.starting]
        await asyncio.gather(*(e.stop() for e in self._engines.values()), return_exceptions=True)
        await self._http.aclose()
        return running

    def reap_orphans(self) -> list[RegistryEntry]:
        return self.registry.reap_orphans(grace=self.settings.stop_grace_s)


async def _forward(
    queue: asyncio.Queue[EngineEvent], engine_id: str, on_event: EventCallback
) -> None:
    while True:
        ev = await queue.get()
        if ev.engine == engine_id:
            on_event(ev)
