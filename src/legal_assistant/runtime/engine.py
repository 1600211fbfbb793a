"""Engine: one supervised inference server = spec + process + state + waiters + events.

Ownership rule: only this class changes `self.state`, always through `_set_state`, which
checks the transition and publishes `(engine, old, new, detail)`. Starting and stopping
each run as a single task per engine (single flight): callers await the task (shielded),
so a caller that goes away never aborts a start other callers are waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.base import EngineSpec
from legal_assistant.runtime.events import EngineEvent, EventBus
from legal_assistant.runtime.ports import LOOPBACK, free_port, port_busy_error, port_is_free
from legal_assistant.runtime.probes import (
    ProbeRejected,
    probe_completion,
    probe_error,
    wait_http_up,
)
from legal_assistant.runtime.process import EngineProcess
from legal_assistant.runtime.registry import Registry
from legal_assistant.runtime.state import EngineState, check_transition

_ids = itertools.count(1)
# How often the stall watchdog samples output / CPU time during a start.
_WATCH_INTERVAL = 0.1
# After a fatal line, let the traceback that follows it land before classifying.
_FATAL_SETTLE = 0.15
_BACKOFF_MAX_S = 60.0


class EngineStopped(LegalAssistantError):
    """The start was abandoned because the engine was asked to stop."""


class Lease:
    """One in-flight request on a ready engine. A switch waits until every lease is
    released; release it exactly once (use `async with supervisor.lease(...)`)."""

    def __init__(self, engine: Engine, *, started: bool, waited_s: float) -> None:
        self.engine = engine
        self.started = started  # True if this call caused (or joined) a start
        self.waited_s = waited_s
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.engine._release()


class Engine:
    def __init__(
        self,
        ref: ModelRef,
        spec: EngineSpec,
        settings: Settings,
        *,
        bus: EventBus,
        registry: Registry | None,
        http: httpx.AsyncClient,
    ) -> None:
        self.id = f"{spec.kind}-{next(_ids)}"
        self.ref = ref
        self.spec = spec
        self.settings = settings
        self._bus = bus
        self._registry = registry
        self._http = http
        self.state = EngineState.STOPPED
        self.phase = "stopped"
        self.phase_detail = ""
        self.phase_progress: float | None = None  # e.g. download fraction
        self.port: int | None = None
        self.served_model: str | None = None
        self.process: EngineProcess | None = None
        self.last_error: LegalAssistantError | None = None
        self.ready_at: float | None = None  # monotonic
        self.ready_wall: float | None = None
        self.start_duration_s: float | None = None
        self.starts = 0
        self.inflight = 0
        self.last_used = time.monotonic()
        self.draining = False  # a switch is waiting for in-flight requests to end
        self._idle = asyncio.Event()
        self._idle.set()
        self._start_task: asyncio.Task[None] | None = None
        self._preflight_task: asyncio.Task[None] | None = None
        # Called when the engine may have become idle (ready, or last lease released):
        # the supervisor's idle-TTL timer re-arms on it.
        self.on_idle: Callable[[], None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._fatal: asyncio.Future[str] | None = None
        self._changed = asyncio.Event()  # pulsed on every transition
        self._old_logs: list[str] = []
        # Crash-loop backoff: consecutive failed starts, and when the next may begin.
        self.failed_starts = 0
        self.retry_at = 0.0  # monotonic
        self.spawns = 0  # processes spawned so far (a start may fail before spawning)
        self.model_arg: str | None = None  # resolved by preflight, used by the next start
        self.weights_bytes: int | None = None  # size on disk of the resolved model
        self.peak_rss: int = 0

    # ------------------------------------------------------------------ state
    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.running else None

    def _set_state(
        self,
        new: EngineState,
        detail: str = "",
        *,
        phase: str | None = None,
        error: LegalAssistantError | None = None,
    ) -> None:
        old = self.state
        check_transition(old, new)
        self.state = new
        self._emit(old, new, detail, phase=phase or str(new), error=error)
        # Every transition that settles "is it ready yet?" must wake every waiter.
        self._changed.set()
        self._changed = asyncio.Event()

    def _emit(
        self,
        old: EngineState,
        new: EngineState,
        detail: str,
        *,
        phase: str,
        progress: float | None = None,
        error: LegalAssistantError | None = None,
    ) -> None:
        self.phase = phase
        if old != new:
            self.phase_detail, self.phase_progress = detail, None
        self._bus.publish(
            EngineEvent(
                engine=self.id,
                model=self.ref.id,
                old=old,
                new=new,
                detail=detail,
                phase=phase,
                progress=progress,
                error_code=error.code if error else None,
            )
        )

    def progress(self, phase: str, detail: str, fraction: float | None) -> None:
        """A phase inside the current state (preparing, downloading n%...)."""
        self.phase_detail, self.phase_progress = detail, fraction
        self._emit(self.state, self.state, detail, phase=phase, progress=fraction)

    def is_available(self) -> bool:
        return self.state is EngineState.READY and not self.draining

    # ------------------------------------------------------------------ leases
    def lease(self, *, started: bool, waited_s: float) -> Lease:
        """Synchronous on purpose: called right after the READY check, with no await in
        between, so no switch can slip between "it is ready" and "I am using it"."""
        assert self.is_available()
        self.inflight += 1
        self._idle.clear()
        self.last_used = time.monotonic()
        return Lease(self, started=started, waited_s=waited_s)

    def _release(self) -> None:
        self.inflight -= 1
        self.last_used = time.monotonic()
        if self.inflight == 0:
            self._idle.set()
            if self.on_idle is not None:
                self.on_idle()

    async def wait_idle(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self.inflight == 0

    # ------------------------------------------------------------------ start
    def begin_start(self) -> asyncio.Task[None]:
        """Start the engine unless a start is already running; return the start task."""
        if self._start_task is not None and not self._start_task.done():
            return self._start_task
        if self.state not in (EngineState.STOPPED, EngineState.FAILED):
            raise RuntimeError(f"cannot start {self.id} in state {self.state}")
        self._start_task = asyncio.create_task(self._start(), name=f"start-{self.id}")
        # A start nobody awaits any more must not log "exception never retrieved".
        self._start_task.add_done_callback(_consume_exception)
        return self._start_task

    @property
    def starting(self) -> asyncio.Task[None] | None:
        t = self._start_task
        return t if t is not None and not t.done() else None

    async def ensure_preflight(self) -> None:
        """Single-flight `preflight`: concurrent callers share one resolution (one
        download), and a caller that goes away does not abort it for the others."""
        task = self._preflight_task
        if task is None or task.done():
            task = self._preflight_task = asyncio.create_task(
                self.preflight(), name=f"preflight-{self.id}"
            )
            task.add_done_callback(_consume_exception)
        await asyncio.shield(task)

    async def preflight(self) -> None:
        """Resolve the model (convert the bundled one, find a cached snapshot, refuse an
        impossible one) *before* the supervisor makes room: a request for a model that
        cannot exist must fail without stopping the engine that works."""
        try:
            self.model_arg = await self.spec.resolve_model(self.ref, self.settings, self.progress)
            self.weights_bytes = await asyncio.to_thread(_weights_size, self.model_arg)
        except LegalAssistantError as err:
            self.starts += 1
            self._set_state(EngineState.STARTING, f"starting {self.ref.id}", phase="starting")
            self._fail(err)
            raise

    async def _start(self) -> None:
        t0 = time.monotonic()
        spawns = self.spawns
        self.starts += 1
        self.last_error = None
        self._set_state(EngineState.STARTING, f"starting {self.ref.id}", phase="starting")
        try:
            model_arg, self.model_arg = self.model_arg, None
            if model_arg is None:
                model_arg = await self.spec.resolve_model(self.ref, self.settings, self.progress)
                self.weights_bytes = await asyncio.to_thread(_weights_size, model_arg)
            attempts = 1 if self.spec.fixed_port(self.settings) else 3
            for attempt in range(1, attempts + 1):
                try:
                    await self._spawn_and_probe(model_arg)
                    break
                except LegalAssistantError as e:
                    # An OS-chosen port can be taken by someone else between our check and
                    # the engine's bind: pick another one instead of failing the user.
                    if e.code != "port_busy" or attempt == attempts:
                        raise
                    await self._discard_process()
        except asyncio.CancelledError:
            await self._discard_process()
            self._fail(EngineStopped("engine_crashed", "start abandoned: the engine was stopped"))
            raise
        except LegalAssistantError as e:
            await self._discard_process()
            self._note_failed_start(spawned=self.spawns != spawns)
            self._fail(e)
            raise
        except Exception as e:  # a bug or an OS error: still a clean, classified failure
            await self._discard_process()
            err = LegalAssistantError("engine_crashed", f"{type(e).__name__}: {e}")
            self._note_failed_start(spawned=self.spawns != spawns)
            self._fail(err)
            raise err from e
        self.failed_starts = 0
        self.retry_at = 0.0
        self.start_duration_s = time.monotonic() - t0
        self.ready_at = time.monotonic()
        self.ready_wall = time.time()
        self._set_state(EngineState.READY, f"ready in {self.start_duration_s:.2f}s", phase="ready")
        self._watch_task = asyncio.create_task(self._watch_running(), name=f"watch-{self.id}")
        self.last_used = time.monotonic()
        if self.on_idle is not None:
            self.on_idle()

    def _note_failed_start(self, *, spawned: bool) -> None:
        """An engine that dies at every start is not respawned on every request: after the
        second failure in a row, starts wait 1, 2, 4 ... up to 60 s (reset when it gets
        ready). Requests meanwhile get the last error at once, with the retry delay.

        A start refused before any process was spawned (its fixed port held by another
        program, its command missing) costs nothing to retry: it does not count, so the
        request after the cause is gone is served instead of getting a stale error."""
        if not spawned:
            return
        self.failed_starts += 1
        if self.failed_starts >= 2:
            delay = min(_BACKOFF_MAX_S, 2.0 ** (self.failed_starts - 2))
            self.retry_at = time.monotonic() + delay

    def backoff_error(self) -> LegalAssistantError | None:
        """The error to answer with while the crash-loop backoff holds, else None."""
        wait = self.retry_at - time.monotonic()
        if self.state is not EngineState.FAILED or wait <= 0 or self.last_error is None:
            return None
        err = self.last_error
        return LegalAssistantError(
            err.code,
            f"{err.detail} — {self.failed_starts} failed starts in a row; "
            f"next attempt allowed in {wait:.0f}s",
            message_fr=err.message_fr,
            message_en=err.message_en,
            log_tail=err.log_tail,
        )

    def _fail(self, err: LegalAssistantError) -> None:
        self.last_error = err
        if self.state is not EngineState.FAILED:
            self._set_state(EngineState.FAILED, err.detail or err.code, phase="failed", error=err)

    async def _spawn_and_probe(self, model_arg: str) -> None:
        fixed = self.spec.fixed_port(self.settings)
        if fixed:
            port = fixed
            if not port_is_free(port):
                raise port_busy_error(port)
        else:
            port = free_port()
        plan = self.spec.launch(model_arg, LOOPBACK, port, self.settings)
        loop = asyncio.get_running_loop()
        self._fatal = loop.create_future()
        fatal = self._fatal

        def on_line(line: str) -> None:
            if self.spec.fatal_line(line) and not fatal.done():
                fatal.set_result(line)

        proc = EngineProcess(plan.argv, plan.env, on_line=on_line)
        try:
            await proc.spawn()
        except OSError as e:
            raise self.spec.not_installed(f"cannot run {plan.argv[0]}: {e.strerror or e}") from e
        self.spawns += 1
        self.process = proc
        self.port = port
        self.served_model = plan.served_model
        if self._registry is not None and proc.pid is not None:
            self._registry.add(pid=proc.pid, port=port, model=self.ref.id, argv=proc.argv)
        self.progress("starting", f"pid {proc.pid} on port {port}", None)

        probe = asyncio.create_task(self._probe(plan.served_model))
        exited = asyncio.create_task(proc.wait())
        stalled = asyncio.create_task(self._stall_watch(proc))
        waiters: set[asyncio.Future[Any]] = {probe, exited, stalled, fatal}
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in (probe, exited, stalled):
                if not w.done():
                    w.cancel()
            for w in (probe, exited, stalled):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w
        if probe in done and probe.exception() is None:
            return
        if probe in done and not fatal.done():
            # The engine may reject the probe (404 "generation thread died") a moment
            # before its log line explaining why reaches us: wait briefly for it.
            await asyncio.wait({fatal}, timeout=0.5)
        tail = proc.tail(40)
        if fatal in done or fatal.done():
            await asyncio.sleep(_FATAL_SETTLE)
            line = fatal.result()
            err = self.spec.classify(tail=proc.tail(40), exit_code=proc.returncode, fatal=line)
            if err.code == "port_busy":
                err = port_busy_error(port, log_tail=err.log_tail)
            raise err
        if exited in done:
            raise self.spec.classify(tail=proc.tail(40), exit_code=proc.returncode, fatal=None)
        if stalled in done:
            raise LegalAssistantError(
                "timeout",
                f"no progress for {self.settings.load_timeout_s:.0f}s "
                f"(state {self.state}); see the engine log",
                log_tail=tail[-12:],
            )
        exc = probe.exception()
        if isinstance(exc, ProbeRejected):
            raise probe_error(exc, tail[-12:])
        raise LegalAssistantError("engine_crashed", f"probe failed: {exc!r}", log_tail=tail[-12:])

    async def _probe(self, served_model: str) -> None:
        """The probe completion is sent from the start and retried while the port refuses
        (a request that arrives while the model loads simply waits for it), so READY is
        known at the earliest moment; "HTTP up" is watched beside it, only to report the
        LOADING phase."""

        def http_up(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is None:
                self._loading()

        watcher = asyncio.create_task(wait_http_up(self._http, self.base_url))
        watcher.add_done_callback(http_up)
        try:
            await probe_completion(self._http, self.base_url, served_model)
        finally:
            watcher.cancel()
        self._loading()  # the probe answered, so HTTP was up: keep the phases in order

    def _loading(self) -> None:
        if self.state is EngineState.STARTING:
            self._set_state(EngineState.LOADING, "HTTP up, loading the model", phase="loading")

    async def _stall_watch(self, proc: EngineProcess) -> None:
        """Return when the engine shows no sign of progress for `load_timeout_s`: no output
        line, no CPU time, no state change. A slow but busy load never trips it; a hung
        process does, whatever the model size."""
        limit = self.settings.load_timeout_s
        last_progress = time.monotonic()
        last_cpu = proc.cpu_time() or 0.0
        last_out = proc.last_output_at
        last_state = self.state
        while True:
            await asyncio.sleep(_WATCH_INTERVAL)
            now = time.monotonic()
            cpu = proc.cpu_time() or last_cpu
            if cpu - last_cpu > 0.05 or proc.last_output_at != last_out or self.state != last_state:
                last_progress = now
            last_cpu, last_out, last_state = cpu, proc.last_output_at, self.state
            if now - last_progress > limit:
                return

    async def _watch_running(self) -> None:
        """While READY: an exit or a fatal line turns the engine FAILED at once, so the
        next request restarts it instead of talking to a corpse."""
        proc = self.process
        fatal = self._fatal
        if proc is None or fatal is None:
            return
        exited = asyncio.create_task(proc.wait())
        waiters: set[asyncio.Future[Any]] = {exited}
        if not fatal.done():
            waiters.add(fatal)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not exited.done():
                exited.cancel()
        if self.state is not EngineState.READY or self.process is not proc:
            return
        if exited.done() and not exited.cancelled():
            err = self.spec.classify(tail=proc.tail(40), exit_code=proc.returncode, fatal=None)
            if err.code != "engine_not_installed":
                err = LegalAssistantError(
                    "engine_crashed", f"exit code {proc.returncode}", log_tail=err.log_tail
                )
        else:
            await asyncio.sleep(_FATAL_SETTLE)
            err = self.spec.classify(tail=proc.tail(40), exit_code=None, fatal=fatal.result())
        self._fail(err)
        await self._discard_process()

    async def _discard_process(self) -> None:
        proc = self.process
        if proc is None:
            return
        await proc.stop(self.settings.stop_grace_s, self.spec.graceful_signal)
        self._forget(proc)

    def _forget(self, proc: EngineProcess) -> None:
        if self._registry is not None and proc.pid is not None:
            self._registry.remove(proc.pid)
        self._old_logs = list(proc.logs)
        if self.process is proc:
            self.process = None

    # ------------------------------------------------------------------ stop
    def stop(self) -> asyncio.Task[None]:
        """Stop (single flight). Cancels a start in progress; does NOT wait for in-flight
        requests — the supervisor drains before calling this."""
        if self._stop_task is not None and not self._stop_task.done():
            return self._stop_task
        self._stop_task = asyncio.create_task(self._stop(), name=f"stop-{self.id}")
        self._stop_task.add_done_callback(_consume_exception)
        return self._stop_task

    async def _stop(self) -> None:
        start = self._start_task
        if start is not None and not start.done():
            start.cancel()
            with contextlib.suppress(BaseException):
                await start
        if self.state in (EngineState.STOPPED,):
            return
        proc = self.process
        if self.state is EngineState.FAILED and proc is None:
            self._set_state(EngineState.STOPPED, "stopped", phase="stopped")
            return
        self._set_state(EngineState.STOPPING, "stopping", phase="stopping")
        if self._watch_task is not None:
            self._watch_task.cancel()
        code = None
        if proc is not None:
            code = await proc.stop(self.settings.stop_grace_s, self.spec.graceful_signal)
            self._forget(proc)
        self.ready_at = None
        self._set_state(EngineState.STOPPED, f"stopped (exit code {code})", phase="stopped")

    # ------------------------------------------------------------------ memory
    def memory_estimate(self) -> int:
        """Bytes this engine needs: a configured override; else the measured RSS once it
        runs (peak seen so far); else the weights on disk plus a KV/runtime margin."""
        override = self.settings.models.get(self.ref.id)
        if override is not None and override.memory_gb is not None:
            return int(override.memory_gb * 1024**3)
        rss = self.process.rss_bytes() if self.process else None
        if rss is not None:
            self.peak_rss = max(self.peak_rss, rss)
        if self.peak_rss and self.state is EngineState.READY:
            return self.peak_rss
        return int((self.weights_bytes or 0) * 1.2) + _KV_MARGIN

    def idle_expires_in(self) -> float | None:
        ttl = self.settings.idle_ttl_for(self.ref.id)
        if not ttl or self.state is not EngineState.READY or self.inflight:
            return None
        return max(0.0, self.last_used + ttl - time.monotonic())

    # ------------------------------------------------------------------ views
    def logs(self, tail: int = 200) -> list[str]:
        lines = list(self.process.logs) if self.process else self._old_logs
        return lines[-tail:] if tail > 0 else lines

    def uptime_s(self) -> float | None:
        return time.monotonic() - self.ready_at if self.ready_at and self.pid else None

    def status(self) -> dict[str, Any]:
        rss = self.process.rss_bytes() if self.process else None
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.ref.id,
            "state": str(self.state),
            "phase": self.phase,
            "phase_detail": self.phase_detail,
            "progress": self.phase_progress,
            "running": self.state is EngineState.READY,
            "pid": self.pid,
            "port": self.port if self.pid else None,
            "host": LOOPBACK,
            "url": f"{self.base_url}/v1" if self.pid else None,
            "served_model": self.served_model,
            "uptime_s": self.uptime_s(),
            "rss_bytes": rss,
            "memory_estimate_bytes": self.memory_estimate(),
            "weights_bytes": self.weights_bytes,
            "idle_ttl_s": self.settings.idle_ttl_for(self.ref.id) or None,
            "idle_expires_in_s": self.idle_expires_in(),
            "inflight": self.inflight,
            "draining": self.draining,
            "starts": self.starts,
            "failed_starts": self.failed_starts,
            "retry_in_s": max(0.0, self.retry_at - time.monotonic()) or None,
            "start_duration_s": self.start_duration_s,
            "last_error": self.last_error.to_dict("en") if self.last_error else None,
        }


# KV cache and runtime overhead on top of the weights (measured: the bundled 135M model
# takes ~110 MB at HTTP-up and ~290 MB after generating).
_KV_MARGIN = 200 * 1024**2


def _weights_size(model_arg: str) -> int | None:
    path = Path(model_arg)
    if not path.is_dir():
        return None
    total = 0
    for pattern in ("*.safetensors", "*.gguf", "*.bin", "*.npz"):
        total += sum(f.stat().st_size for f in path.glob(pattern) if f.is_file())
    return total


def _consume_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
