"""Engine: one supervised inference server, and the one owner of its lifecycle.

Every change of an engine's state is made by its **runner** — one task per engine —
and nowhere else. Callers only send commands, which are plain synchronous calls that
record an intent and wake the runner:

* `demand(warm=)`  — "I want it ready": returns the future of the current start attempt
                     (single flight: N callers, one attempt), creating one if needed;
* `try_lease()`    — synchronous on purpose: a lease is taken in the same step as the
                     READY check, so nothing can slip between "it is ready" and "I use it";
* `request_stop()` — stop (drain first, or not; or only if still idle, for the idle TTL);
                     a stop fails the attempt its earlier demanders wait for — the later
                     action wins: a demand after the stop starts the engine again;
* `report_wedged()`— a request saw the engine stop answering: fail it, kill it.

The runner loops: a pending stop order is carried out first, whatever the state (a
download or a start in progress is cancelled, its worker killed); a demand on a stopped
or failed engine runs one start attempt — preparing (resolve the model: convert, find,
download), queued (placement: room under the residency policy), starting, loading,
ready; while ready it watches the process and wakes for commands. No invariant here
rests on the absence of an `await`: only the runner writes the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.backoff import CrashLoop
from legal_assistant.runtime.commands import EngineStopped, Lease, StopOrder, consume_exception
from legal_assistant.runtime.engines.base import EngineHandle, EngineSpec
from legal_assistant.runtime.events import EngineEvent, EventBus, Pulse
from legal_assistant.runtime.launch import Launcher
from legal_assistant.runtime.memory import estimate_bytes
from legal_assistant.runtime.ports import LOOPBACK
from legal_assistant.runtime.process import EngineProcess
from legal_assistant.runtime.registry import Registry
from legal_assistant.runtime.runner import run_engine
from legal_assistant.runtime.state import EngineState, check_transition

if TYPE_CHECKING:
    from legal_assistant.runtime.placement import Placement

log = logging.getLogger("legal_assistant")
S = EngineState
_ids = itertools.count(1)


class Engine:
    def __init__(
        self,
        ref: ModelRef,
        spec: EngineSpec,
        settings: Settings,
        *,
        bus: EventBus,
        pulse: Pulse,
        placement: Placement,
        registry: Registry | None,
        http: httpx.AsyncClient,
    ) -> None:
        self.id = f"{spec.kind}-{next(_ids)}"
        self.ref = ref
        self.spec = spec
        self.settings = settings
        self._bus = bus
        self._pulse = pulse
        self._placement = placement
        self._http = http
        self._launcher = Launcher(
            engine_id=self.id, ref=ref, spec=spec, settings=settings, http=http,
            registry=registry, on_spawned=self._spawned, on_http_up=self._http_up,
        )  # fmt: skip
        # --- written by the runner only
        self.state = S.STOPPED
        self.detail = ""
        self.progress: float | None = None
        self.port: int | None = None
        self.served_model: str | None = None
        self.process: EngineProcess | None = None
        self.model_arg: str | None = None
        self.weights_bytes: int | None = None
        self.last_error: LegalAssistantError | None = None
        self.ready_at: float | None = None  # monotonic
        self.start_duration_s: float | None = None
        self.starts = 0
        self.spawns = 0
        self._crash_loop = CrashLoop()
        self._old_logs: list[str] = []
        self._peak_rss = 0
        # --- commands (set synchronously by callers, consumed by the runner)
        self._attempt: asyncio.Future[None] | None = None
        self._attempt_warm_only = False
        self._wanted = False
        self._stop_order: StopOrder | None = None
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        # --- use, counted synchronously (leases, demanders waiting for an attempt)
        self.inflight = 0
        self.waiters = 0
        self.last_used = time.monotonic()
        self.keep_alive_s: float | None = None  # per-engine idle TTL override (Ollama)

    # ------------------------------------------------------------------ views
    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self.process
        return (proc.engine_pid or proc.pid) if proc is not None and proc.running else None

    @property
    def draining(self) -> bool:
        return self.state is S.DRAINING

    @property
    def busy(self) -> bool:
        """Answering, or about to: leases held or callers waiting for its start."""
        return self.inflight > 0 or self.waiters > 0

    @property
    def start_pending(self) -> bool:
        return self._attempt is not None and not self._attempt.done()

    def is_stop_pending(self) -> bool:
        return self._stop_order is not None

    def is_available(self) -> bool:
        return self.state is S.READY and self._stop_order is None

    def logs(self, tail: int = 200) -> list[str]:
        lines = list(self.process.logs) if self.process else self._old_logs
        return lines[-tail:] if tail > 0 else lines

    def memory_estimate(self) -> int:
        rss = self.process.rss_bytes() if self.process else None
        if rss is not None:
            self._peak_rss = max(self._peak_rss, rss)
        return estimate_bytes(
            self.settings, self.ref.id, weights_bytes=self.weights_bytes,
            peak_rss=self._peak_rss, measured=self.state is S.READY,
        )  # fmt: skip

    def idle_ttl(self) -> float | None:
        """Seconds idle before unloading; None = never (no TTL, or keep_alive < 0)."""
        if self.keep_alive_s is not None:
            return None if self.keep_alive_s < 0 else self.keep_alive_s
        return self.settings.idle_ttl_for(self.ref.id) or None

    def idle_expires_in(self) -> float | None:
        ttl = self.idle_ttl()
        if ttl is None or self.state is not S.READY or self.busy or self._stop_order:
            return None
        return max(0.0, self.last_used + ttl - time.monotonic())

    async def wait_change(self, timeout: float | None = None) -> None:
        """Return after the next state transition (or `timeout`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    # ------------------------------------------------------------------ commands
    def demand(self, *, warm: bool = False) -> asyncio.Future[None]:
        """The future of the start attempt this caller joins (done at once when ready).
        Raises the last error while the crash-loop backoff holds."""
        if self.is_available():
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if not self.start_pending:
            backoff = self.backoff_error()
            if backoff is not None:
                raise backoff
            self._attempt = asyncio.get_running_loop().create_future()
            self._attempt.add_done_callback(consume_exception)
            self._attempt_warm_only = warm
        elif not warm:
            self._attempt_warm_only = False
        self._wanted = True
        self._command()
        assert self._attempt is not None
        return self._attempt

    @property
    def warm_only(self) -> bool:
        """The pending start was asked for by warm-ups only (they never evict busy engines)."""
        return self._attempt_warm_only

    def try_lease(self, *, started: bool, waited_s: float) -> Lease | None:
        if not self.is_available():
            return None
        self.inflight += 1
        self.last_used = time.monotonic()
        return Lease(self, started=started, waited_s=waited_s)

    def end_lease(self) -> None:
        """Called once per Lease, by Lease.release()."""
        self.inflight -= 1
        self.last_used = time.monotonic()
        if self.inflight == 0:
            self._pulse.fire()  # placement and the idle TTL wait for "idle"

    def add_waiter(self) -> None:
        self.waiters += 1

    def remove_waiter(self) -> None:
        self.waiters -= 1
        if self.waiters == 0:
            self._pulse.fire()

    def request_stop(
        self, reason: str, *, drain: bool = True, only_if_idle: bool = False
    ) -> asyncio.Future[None]:
        """Ask the runner to stop; the future is done once the engine is stopped (or the
        stop was moot). Callers waiting for an attempt begun before this get EngineStopped."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(consume_exception)
        order = self._stop_order
        if order is None:
            order = self._stop_order = StopOrder(reason, drain, only_if_idle)
        else:  # merge: the most decisive request wins
            order.drain = order.drain and drain
            order.only_if_idle = order.only_if_idle and only_if_idle
            if reason in ("user", "shutdown"):
                order.reason = reason
        order.done.append(done)
        if not only_if_idle:
            self._wanted = False
            self._fail_attempt(
                LegalAssistantError("shutting_down")
                if reason == "shutdown"
                else EngineStopped(f"the engine was stopped ({reason})")
            )
        self._command()
        return done

    def report_wedged(self, detail: str) -> None:
        """A request got no byte for ENGINE_READ_TIMEOUT_S: end the engine as failed; the
        next request restarts it."""
        if self.state is not S.READY and self.state is not S.DRAINING:
            return
        err = LegalAssistantError("engine_wedged", detail)
        self.request_stop("wedged", drain=False)
        assert self._stop_order is not None
        self._stop_order.fail_with = err

    def set_keep_alive(self, ttl_s: float | None) -> None:
        self.keep_alive_s = ttl_s
        self._pulse.fire()

    def close(self) -> None:
        """End the runner (the record is being dropped; nothing runs)."""
        if self._runner is not None:
            self._runner.cancel()

    def _command(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"runner-{self.id}")
        self._wake.set()

    def _fail_attempt(self, err: LegalAssistantError) -> None:
        if self._attempt is not None and not self._attempt.done():
            self._attempt.set_exception(err)

    # ------------------------------------------------------------------ the runner
    async def _run(self) -> None:
        await run_engine(self, RunnerAccess(self))

    # Transitions and events: used by the runner (runner.py) through RunnerAccess.
    def _set(
        self, new: EngineState, detail: str = "", *, error: LegalAssistantError | None = None
    ) -> None:
        old = self.state
        check_transition(old, new)
        self.state, self.detail, self.progress = new, detail, None
        self._publish(old, new, detail, None, error)
        # Every transition that settles "is it ready yet?" must wake every waiter.
        self._changed.set()
        self._changed = asyncio.Event()
        self._pulse.fire()

    def _report(self, detail: str, fraction: float | None) -> None:
        self.detail, self.progress = detail, fraction
        self._publish(self.state, self.state, detail, fraction, None)

    def _publish(
        self,
        old: EngineState,
        new: EngineState,
        detail: str,
        progress: float | None,
        error: LegalAssistantError | None,
    ) -> None:
        self._bus.publish(
            EngineEvent(
                engine=self.id, model=self.ref.id, old=old, new=new, detail=detail,
                phase=str(new), progress=progress, error_code=error.code if error else None,
            )
        )  # fmt: skip

    def _spawned(self, proc: EngineProcess, port: int) -> None:
        self.spawns += 1
        self.process, self.port = proc, port
        self._report(f"pid {proc.engine_pid or proc.pid} on port {port}", None)

    def _http_up(self) -> None:
        if self.state is S.STARTING:
            self._set(S.LOADING, "HTTP up, loading the model")

    def handle(self) -> EngineHandle:
        assert self.model_arg is not None and self.served_model is not None
        return EngineHandle(
            engine_id=self.id, ref=self.ref, base_url=self.base_url, model_arg=self.model_arg,
            served_model=self.served_model, settings=self.settings, http=self._http,
        )  # fmt: skip

    def backoff_error(self) -> LegalAssistantError | None:
        """The error to answer with while the crash-loop backoff holds, else None."""
        return self._crash_loop.error(self.last_error) if self.state is S.FAILED else None

    @property
    def failed_starts(self) -> int:
        return self._crash_loop.failed_starts

    def retry_in(self) -> float:
        return self._crash_loop.retry_in()

    def status(self) -> dict[str, Any]:
        from legal_assistant.runtime.views import engine_status

        return engine_status(self)


class RunnerAccess:
    """The runner's handle on its engine's private parts: the one place (runner.py)
    allowed to consume commands and write state."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine

    @property
    def launcher(self) -> Launcher:
        return self.e._launcher

    @property
    def placement(self) -> Placement:
        return self.e._placement

    @property
    def wake(self) -> asyncio.Event:
        return self.e._wake

    @property
    def pulse(self) -> Pulse:
        return self.e._pulse

    def take_stop_order(self) -> StopOrder | None:
        order, self.e._stop_order = self.e._stop_order, None
        return order

    def peek_stop_order(self) -> StopOrder | None:
        return self.e._stop_order

    @property
    def wanted(self) -> bool:
        return self.e._wanted

    def satisfied(self) -> None:
        """READY reached: the demand is met; resolve the attempt its callers await."""
        self.e._wanted = False
        if self.e._attempt is not None and not self.e._attempt.done():
            self.e._attempt.set_result(None)

    def fail_attempt(self, err: LegalAssistantError) -> None:
        self.e._wanted = False
        self.e._fail_attempt(err)

    def set(
        self, new: EngineState, detail: str = "", *, error: LegalAssistantError | None = None
    ) -> None:
        self.e._set(new, detail, error=error)

    def report(self, detail: str, fraction: float | None) -> None:
        self.e._report(detail, fraction)

    def forget_process(self) -> None:
        proc = self.e.process
        if proc is not None:
            self.e._old_logs = list(proc.logs)
        self.e.process = None

    @property
    def crash_loop(self) -> CrashLoop:
        return self.e._crash_loop


__all__ = ["Engine", "EngineStopped", "Lease", "RunnerAccess"]
