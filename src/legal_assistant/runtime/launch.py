"""Spawning one engine process and proving it ready — or a classified error, at once.

The engine's runner (`lifecycle.Engine`) calls `launch()` from its STARTING state and owns
the result; this module changes no engine state itself, it reports the one phase it sees
("HTTP up" → LOADING) through a callback.

Fail fast: the child's exit, or one of its known fatal lines *during start-up*, ends the
wait with a classified error and the engine's last lines. A timeout is for stalls only:
no output line and (almost) no CPU time for `load_timeout_s` — a slow but busy load
never trips it, whatever the model size.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.base import EngineSpec
from legal_assistant.runtime.ports import LOOPBACK, free_port, port_busy_error, port_is_free
from legal_assistant.runtime.probes import ProbeRejected, probe_error, wait_http_up
from legal_assistant.runtime.process import EngineProcess
from legal_assistant.runtime.registry import Registry

# How often the stall watch samples output and CPU time.
_WATCH_INTERVAL = 0.1
# CPU seconds (engine and its children) that count as progress, as a fraction of the stall
# limit: 2 % of a core. A silent load at 30 % of a core shows progress within a second; an
# idle process (a few polling threads) never reaches it.
_CPU_PROGRESS_FRACTION = 0.02
# After a fatal line, let the traceback that follows it land before classifying.
_FATAL_SETTLE = 0.15


@dataclass(frozen=True, slots=True)
class Launched:
    process: EngineProcess
    port: int
    served_model: str


class Launcher:
    def __init__(
        self,
        *,
        engine_id: str,
        ref: ModelRef,
        spec: EngineSpec,
        settings: Settings,
        http: httpx.AsyncClient,
        registry: Registry | None,
        on_spawned: Callable[[EngineProcess, int], None],
        on_http_up: Callable[[], None],
    ) -> None:
        self.engine_id = engine_id
        self.ref = ref
        self.spec = spec
        self.settings = settings
        self._http = http
        self._registry = registry
        self._on_spawned = on_spawned
        self._on_http_up = on_http_up

    async def launch(self, model_arg: str) -> Launched:
        """Spawn and probe; on any failure (or cancellation) the process is gone."""
        attempts = 1 if self.spec.fixed_port(self.settings) else 3
        for attempt in range(1, attempts + 1):
            try:
                return await self._spawn_and_probe(model_arg)
            except LegalAssistantError as e:
                # An OS-chosen port can be taken by someone else between our check and
                # the engine's bind: pick another one instead of failing the user.
                if e.code != "port_busy" or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    async def discard(self, proc: EngineProcess) -> int | None:
        """Stop a process (graceful signal, grace, SIGKILL of the group) and forget it."""
        code = await proc.stop(self.settings.stop_grace_s, self.spec.graceful_signal)
        if self._registry is not None and proc.engine_pid is not None:
            self._registry.remove(proc.engine_pid)
        return code

    async def _spawn_and_probe(self, model_arg: str) -> Launched:
        fixed = self.spec.fixed_port(self.settings)
        if fixed:
            port = fixed
            if not port_is_free(port):
                raise self._port_busy(port)
        else:
            port = free_port()
        plan = self.spec.launch(model_arg, LOOPBACK, port, self.settings)
        fatal: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        watching = True  # fatal patterns apply to start-up only (a prompt may say anything)

        def on_line(line: str) -> None:
            if watching and not fatal.done() and self.spec.fatal_line(line):
                fatal.set_result(line)

        proc = EngineProcess(plan.argv, plan.env, on_line=on_line)
        try:
            await proc.spawn()
        except OSError as e:
            raise self.spec.not_installed(f"cannot run {plan.argv[0]}: {e.strerror or e}") from e
        try:
            await proc.wait_engine_pid()
            if self._registry is not None and proc.engine_pid is not None:
                self._registry.add(
                    pid=proc.engine_pid, port=port, model=self.ref.id, argv=plan.argv
                )
            self._on_spawned(proc, port)
            await self._probe(proc, plan.served_model, port, fatal)
        except BaseException:
            await self.discard(proc)
            raise
        finally:
            watching = False
        return Launched(process=proc, port=port, served_model=plan.served_model)

    async def _probe(
        self, proc: EngineProcess, served_model: str, port: int, fatal: asyncio.Future[str]
    ) -> None:
        base_url = f"http://{LOOPBACK}:{port}"
        probe = asyncio.create_task(self._ready(base_url, served_model))
        exited = asyncio.create_task(proc.wait())
        stalled = asyncio.create_task(self._stall_watch(proc))
        waiters: set[asyncio.Future[Any]] = {probe, exited, stalled, fatal}
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in (probe, exited, stalled):
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
        if fatal.done():
            await asyncio.sleep(_FATAL_SETTLE)
            err = self.spec.classify(
                tail=proc.tail(40), exit_code=proc.returncode, fatal=fatal.result()
            )
            if err.code == "port_busy":
                err = self._port_busy(port, log_tail=err.log_tail)
            raise err
        tail = proc.tail(40)
        if exited in done:
            raise self.spec.classify(tail=tail, exit_code=proc.returncode, fatal=None)
        if stalled in done:
            raise LegalAssistantError(
                "timeout",
                f"no progress for {self.settings.load_timeout_s:.0f}s (no output, no CPU "
                "time); see the engine log",
                log_tail=tail[-12:],
            )
        exc = probe.exception()
        if isinstance(exc, ProbeRejected):
            raise probe_error(exc, tail[-12:])
        raise LegalAssistantError("engine_crashed", f"probe failed: {exc!r}", log_tail=tail[-12:])

    async def _ready(self, base_url: str, served_model: str) -> None:
        """The readiness probe is sent from the spawn on (a request that arrives while the
        model loads simply waits for it), so READY is known at the earliest moment; "HTTP
        up" is watched beside it, only to report the LOADING phase."""

        def http_up(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is None:
                self._on_http_up()

        watcher = asyncio.create_task(wait_http_up(self._http, base_url))
        watcher.add_done_callback(http_up)
        try:
            await self.spec.probe_ready(self._http, base_url, served_model)
        finally:
            watcher.cancel()
        self._on_http_up()  # the probe answered, so HTTP was up: keep the phases in order

    async def _stall_watch(self, proc: EngineProcess) -> None:
        """Return when the engine shows no sign of progress for `load_timeout_s`: no output
        line and less than 2 % of a core of CPU time (the engine and all its children —
        vLLM loads in worker processes) since the last sign of progress."""
        limit = self.settings.load_timeout_s
        min_cpu = max(0.05, _CPU_PROGRESS_FRACTION * limit)
        last_progress = time.monotonic()
        cpu_mark = proc.cpu_time() or 0.0
        last_out = proc.last_output_at
        while True:
            await asyncio.sleep(_WATCH_INTERVAL)
            now = time.monotonic()
            cpu = proc.cpu_time()
            if cpu is not None and cpu - cpu_mark >= min_cpu:
                cpu_mark, last_progress = cpu, now
            if proc.last_output_at != last_out:
                last_out, last_progress = proc.last_output_at, now
                cpu_mark = cpu if cpu is not None else cpu_mark
            if now - last_progress > limit:
                return

    def _port_busy(self, port: int, log_tail: list[str] | None = None) -> LegalAssistantError:
        var = self.spec.port_variable or "the engine's port setting"
        return port_busy_error(
            port,
            log_tail,
            hint=(
                f"ou laissez Legal Assistant choisir un port libre ({var}=0)",
                f"or let Legal Assistant pick a free port ({var}=0)",
            ),
        )
