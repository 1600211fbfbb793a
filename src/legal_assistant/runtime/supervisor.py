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
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

import httpx

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engine import Engine, EngineStopped, Lease
from legal_assistant.runtime.engines import default_specs
from legal_assistant.runtime.engines.base import EngineSpec
from legal_assistant.runtime.events import EngineEvent, EventBus
from legal_assistant.runtime.registry import Registry, RegistryEntry
from legal_assistant.runtime.state import ACTIVE_STATES, EngineState

log = logging.getLogger("legal_assistant")

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
        self.specs: dict[str, EngineSpec] = specs or default_specs()
        self._engines: dict[str, Engine] = {}
        self._placement = asyncio.Lock()
        self._http = httpx.AsyncClient(trust_env=False)
        self._shutting_down = False
        self._ttl_wakeup = asyncio.Event()
        self._ttl_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
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
        """Engines that run or are about to: a start decided under the placement lock is
        active even before its task's first step sets STARTING — otherwise a placement
        for another model of the kind, run in between, would see no resident engine and
        start a second one (two cold models requested at the same instant)."""
        return [
            e
            for e in self._engines.values()
            if (e.state in ACTIVE_STATES or e.starting is not None)
            and (kind is None or e.kind == kind)
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
            engine.on_idle = self._ttl_wakeup.set
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
        self._ensure_ttl_timer(ref)
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

    async def acquire_events(
        self, model: ModelRef | str, *, tick: float | None = None
    ) -> AsyncGenerator[EngineEvent | Lease | None, None]:
        """`acquire` for a streaming caller: yields the engine's events as they happen
        (and `None` every `tick` seconds without one), then the Lease, last — the caller
        owns it from there. Raises the classified error if the start fails. Closing the
        iterator early ends only this wait: the start goes on for the others, and a lease
        won in that race is released. Use it inside `contextlib.aclosing`."""
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        task = asyncio.create_task(self.acquire(model, on_event=queue.put_nowait))
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

    async def _acquire_slow(
        self, engine: Engine, t0: float, on_event: EventCallback | None
    ) -> Lease:
        started = False
        abandoned = 0
        # A stop issued after this request began cancels the start it is waiting for, at
        # whatever step it is (resolving the model, queued for room, starting); a request
        # that begins after a stop starts the engine again. The later action wins.
        stops = self._stop_requests.get(engine.id, 0)
        while True:
            if self._shutting_down:
                raise LegalAssistantError("shutting_down")
            if engine.is_available():
                return engine.lease(started=started, waited_s=time.monotonic() - t0)
            task = engine.starting
            if task is None:
                backoff = engine.backoff_error()
                if backoff is not None:
                    raise backoff
                if engine.state in (EngineState.STOPPED, EngineState.FAILED):
                    # Outside the placement lock: a download may take minutes and must
                    # not hold up other models' placements.
                    await engine.ensure_preflight()
                async with self._placement:
                    if engine.is_available() or engine.starting is not None:
                        continue
                    await self._make_room(engine, on_event)
                    if engine.state is EngineState.STOPPING:
                        await engine.stop()
                    # Both may have happened while we waited (preflight, room, drain);
                    # checked with no await before the spawn, so none can slip in.
                    if self._shutting_down:
                        raise LegalAssistantError("shutting_down")
                    if self._stop_requests.get(engine.id, 0) != stops:
                        raise EngineStopped(
                            "engine_crashed", "the engine was stopped before it started"
                        )
                    if engine.state in (EngineState.STOPPED, EngineState.FAILED):
                        task = engine.begin_start()
                    else:
                        continue
            started = True
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller went away; the start goes on for the others
                # The start itself was cancelled: by a stop issued after this request
                # began (the stop wins), or by placements of other models (retry, bounded).
                abandoned += 1
                if self._stop_requests.get(engine.id, 0) != stops or abandoned > 3:
                    raise EngineStopped(
                        "engine_crashed", "the engine was stopped during start"
                    ) from None

    async def _make_room(self, engine: Engine, on_event: EventCallback | None) -> None:
        """Apply the residency policy before `engine` starts (placement lock held).

        * "swap": at most one engine per kind (the seed's behaviour): evict the resident.
        * "budget": keep engines while their estimated memory fits the budget; evict the
          least recently used idle engine(s), never one with requests in flight (wait for
          one to become idle instead, bounded by drain_timeout_s)."""
        if self.settings.residency == "swap":
            await self._evict(
                [e for e in self.active(engine.kind) if e is not engine], engine, on_event
            )
            return
        budget = self.settings.memory_budget_bytes()
        need = engine.memory_estimate()
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while True:
            others = [e for e in self.active() if e is not engine]
            used = sum(e.memory_estimate() for e in others)
            if used + need <= budget or not others:
                break
            idle = [e for e in others if e.inflight == 0 and e.state is EngineState.READY]
            if idle:
                victim = min(idle, key=lambda e: e.last_used)
                log.info(
                    "Evicting %s (LRU idle) to fit %s in the memory budget",
                    victim.ref.id,
                    engine.ref.id,
                )
                await self._evict([victim], engine, on_event)
                continue
            if time.monotonic() > deadline:
                raise LegalAssistantError(
                    "switch_timeout",
                    f"memory budget {budget / 1024**3:.1f} GB is full with engines that are "
                    f"answering; {engine.ref.id} needs {need / 1024**3:.2f} GB",
                )
            if on_event is not None:
                on_event(
                    EngineEvent(
                        engine.id,
                        engine.ref.id,
                        engine.state,
                        engine.state,
                        "waiting for memory: every loaded engine is answering",
                        phase="queued",
                    )
                )
            # Wake when any engine goes idle or changes state (a start finishing).
            waits = [asyncio.ensure_future(e._idle.wait()) for e in others]
            waits += [asyncio.ensure_future(e._changed.wait()) for e in others]
            _, pending = await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
        await _memory_available(need)

    async def _evict(
        self, others: list[Engine], engine: Engine, on_event: EventCallback | None
    ) -> None:
        """Drain, then stop, `others` — never while they are answering (bounded)."""
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

    # ------------------------------------------------------------------ idle TTL
    def _ensure_ttl_timer(self, ref: ModelRef) -> None:
        if self._ttl_task is None and self.settings.idle_ttl_for(ref.id) > 0:
            self._ttl_task = asyncio.create_task(self._ttl_loop(), name="idle-ttl")

    async def _ttl_loop(self) -> None:
        """Unload engines idle for longer than their TTL, counted from the end of their
        last request. Sleeps until the nearest expiry; re-armed whenever a lease ends."""
        while not self._shutting_down:
            self._ttl_wakeup.clear()
            next_in: float | None = None
            for engine in list(self._engines.values()):
                expires = engine.idle_expires_in()
                if expires is None:
                    continue
                if expires <= 0:
                    await self._unload_idle(engine)
                else:
                    next_in = expires if next_in is None else min(next_in, expires)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ttl_wakeup.wait(), next_in)

    async def _unload_idle(self, engine: Engine) -> None:
        async with self._placement:
            expires = engine.idle_expires_in()
            if expires is None or expires > 0 or engine.draining:
                return  # a request came in meanwhile: its lease renewed the engine
            # Same synchronous step as the check above: from here a new request sees the
            # engine draining, waits for the placement lock, and starts it again — the
            # TTL can never stop an engine under a request, by construction.
            engine.draining = True
            try:
                log.info(
                    "Unloading %s after %.0fs idle",
                    engine.ref.id,
                    self.settings.idle_ttl_for(engine.ref.id),
                )
                await engine.stop()
            finally:
                engine.draining = False

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

        task = asyncio.create_task(run(), name="preload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ------------------------------------------------------------------ stop
    async def stop(
        self, model: ModelRef | str | None = None, *, drain: bool = True
    ) -> list[Engine]:
        """Stop one model's engine (or all). With `drain`, wait for in-flight answers first
        (bounded); the engine takes no new request meanwhile."""
        if model is None:
            targets = self.active()
            named = list(self._engines.values())
        else:
            ref = parse_model_id(model) if isinstance(model, str) else model
            e = self._engines.get(ref.id)
            targets = [e] if e is not None and e.state is not EngineState.STOPPED else []
            named = [e] if e is not None else []
        # Counted now, before any await: requests already waiting for a start of these
        # engines (even one still resolving its model or queued for room, state STOPPED)
        # give up instead of starting the engine after this stop.
        for e in named:
            self._stop_requests[e.id] = self._stop_requests.get(e.id, 0) + 1
        async with self._placement:
            for e in targets:
                e.draining = True
            try:
                if drain:
                    await asyncio.gather(
                        *(e.wait_idle(self.settings.drain_timeout_s) for e in targets)
                    )
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
        for task in [*self._background, *([self._ttl_task] if self._ttl_task else [])]:
            task.cancel()
        running = [e for e in self._engines.values() if e.pid is not None or e.starting]
        await asyncio.gather(*(e.stop() for e in self._engines.values()), return_exceptions=True)
        await self._http.aclose()
        return running

    def residency(self) -> dict[str, object]:
        """The policy and the memory picture, as shown by /api/engines and the UI."""
        active = self.active()
        return {
            "policy": self.settings.residency,
            "memory_budget_bytes": self.settings.memory_budget_bytes(),
            "memory_estimate_bytes": sum(e.memory_estimate() for e in active),
            "idle_ttl_s": self.settings.idle_ttl_s or None,
        }

    def reap_orphans(self) -> list[RegistryEntry]:
        return self.registry.reap_orphans(grace=self.settings.stop_grace_s)


async def _memory_available(need: int, wait_s: float = 10.0) -> None:
    """After an eviction the kernel gets the memory back once the process is reaped;
    wait (bounded) until it shows as available before loading the next model."""
    import psutil

    deadline = time.monotonic() + wait_s
    # No event exists for "the kernel has memory again": a short bounded poll it is.
    while psutil.virtual_memory().available < need and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def _forward(
    queue: asyncio.Queue[EngineEvent], engine_id: str, on_event: EventCallback
) -> None:
    while True:
        ev = await queue.get()
        if ev.engine == engine_id:
            on_event(ev)
