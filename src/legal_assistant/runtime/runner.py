"""The runner: the one task per engine that carries out its lifecycle.

`run_engine` loops over the engine's commands (see `lifecycle.py`):
1. a stop order first, whatever the state: a start in progress (resolving, downloading,
   queued for room, starting, loading) is cancelled — a download worker is killed with
   it, its partial files kept for resume —, a ready engine drains (bounded), runs its
   spec's `before_stop` hook, then its process is stopped;
2. a demand on a stopped or failed engine: one start attempt, cancelled by a stop order;
3. while ready: watch the process; an exit is a crash (FAILED, counted toward the
   crash-loop backoff when it comes soon after READY);
4. otherwise sleep until the next command.
Fatal output lines matter during start-up only (launch.py): a ready engine that logs a
user's prompt saying "Address already in use" keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.memory import weights_size
from legal_assistant.runtime.state import IDLE_STATES, PRE_SPAWN_STATES, EngineState

if TYPE_CHECKING:
    from legal_assistant.runtime.commands import StopOrder
    from legal_assistant.runtime.lifecycle import Engine, RunnerAccess

log = logging.getLogger("legal_assistant")
S = EngineState
_STOP_HOOK_TIMEOUT_S = 15.0


async def run_engine(e: Engine, a: RunnerAccess) -> None:
    while True:
        a.wake.clear()
        try:
            order = a.take_stop_order()
            if order is not None:
                await _stop(e, a, order)
            elif e.state in IDLE_STATES and a.wanted:
                await _start_cycle(e, a)
            elif e.state is S.READY:
                await _serve(e, a)
            else:
                await a.wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: never let it kill the owner silently
            log.exception("Engine %s runner error", e.id)
            err = LegalAssistantError("engine_crashed", f"{type(exc).__name__}: {exc}")
            await _fail(e, a, err, spawned=False)


async def _start_cycle(e: Engine, a: RunnerAccess) -> None:
    op = asyncio.create_task(_start(e, a), name=f"start-{e.id}")
    try:
        while not op.done():
            waker = asyncio.ensure_future(a.wake.wait())
            await asyncio.wait({op, waker}, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            if a.peek_stop_order() is not None and not op.done():
                op.cancel()  # the stop wins: the download or the start ends now
                await asyncio.wait({op})
                return
            a.wake.clear()  # a caller joined the attempt: nothing to do
    except asyncio.CancelledError:
        op.cancel()
        await asyncio.wait({op})
        raise


async def _start(e: Engine, a: RunnerAccess) -> None:
    t0 = time.monotonic()
    spawns = e.spawns
    e.starts += 1
    e.last_error = None
    a.set(S.PREPARING, f"preparing {e.ref.id}")

    def progress(phase: str, detail: str, fraction: float | None) -> None:
        if phase == "downloading" and e.state is S.PREPARING:
            a.set(S.DOWNLOADING, detail)
        a.report(detail, fraction)

    try:
        e.model_arg = await e.spec.resolve_model(e.ref, e.settings, progress)
        e.weights_bytes = await asyncio.to_thread(weights_size, e.model_arg)
        a.set(S.QUEUED, "waiting for room under the residency policy")
        await a.placement.admit(e)
        # No await between the placement's decision and this transition: from here the
        # engine counts as resident for every other placement.
        a.set(S.STARTING, f"starting {e.ref.id}")
        launched = await a.launcher.launch(e.model_arg)
        e.served_model = launched.served_model
        try:
            await e.spec.after_ready(e.handle())
        except BaseException:
            await a.launcher.discard(launched.process)
            raise
    except asyncio.CancelledError:
        a.forget_process()
        raise
    except LegalAssistantError as err:
        await _fail(e, a, err, spawned=e.spawns != spawns)
        return
    except Exception as exc:  # a bug or an OS error: still a clean, classified failure
        wrapped = LegalAssistantError("engine_crashed", f"{type(exc).__name__}: {exc}")
        await _fail(e, a, wrapped, spawned=e.spawns != spawns)
        return
    e.start_duration_s = time.monotonic() - t0
    e.ready_at = time.monotonic()
    e.last_used = time.monotonic()
    a.crash_loop.ready()
    a.set(S.READY, f"ready in {e.start_duration_s:.2f}s")
    a.satisfied()


async def _fail(e: Engine, a: RunnerAccess, err: LegalAssistantError, *, spawned: bool) -> None:
    proc = e.process
    if proc is not None:
        await a.launcher.discard(proc)
        a.forget_process()
    e.last_error = err
    a.crash_loop.failed_start(spawned=spawned)
    if e.state is not S.FAILED:
        a.set(S.FAILED, err.detail or err.code, error=err)
    a.fail_attempt(err)


async def _serve(e: Engine, a: RunnerAccess) -> None:
    # Callers who demanded it while a moot stop order (an idle unload that a request
    # overtook) made it look unavailable: it is ready, tell them.
    a.satisfied()
    proc = e.process
    if proc is None:  # cannot happen: READY always has a process
        await _fail(e, a, LegalAssistantError("engine_crashed", "no process"), spawned=False)
        return
    exited = asyncio.ensure_future(proc.wait())
    waker = asyncio.ensure_future(a.wake.wait())
    try:
        await asyncio.wait({exited, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waker.cancel()
        exited.cancel()
    if proc.running or a.peek_stop_order() is not None:
        return  # a command: the loop carries it out
    err = e.spec.classify(tail=proc.tail(40), exit_code=proc.returncode, fatal=None)
    if err.code != "engine_not_installed":
        err = LegalAssistantError(
            "engine_crashed", f"exit code {proc.returncode}", log_tail=err.log_tail
        )
    log.warning("Engine %s (%s) exited unexpectedly: %s", e.id, e.ref.id, err.detail)
    a.crash_loop.crashed_when_ready(e.ready_at)
    e.last_error = err
    a.set(S.FAILED, err.detail, error=err)  # at once: requests must not wait for the reap
    await a.launcher.discard(proc)
    a.forget_process()


async def _stop(e: Engine, a: RunnerAccess, order: StopOrder) -> None:
    try:
        await _stop_steps(e, a, order)
    except LegalAssistantError as err:
        for fut in order.done:
            if not fut.done():
                fut.set_exception(err)
    finally:
        for fut in order.done:
            if not fut.done():
                fut.set_result(None)


async def _stop_steps(e: Engine, a: RunnerAccess, order: StopOrder) -> None:
    """Stop, in numbered steps: 1. drain (no new lease; bounded wait for the answers in
    flight), 2. the spec's before_stop hook for a healthy engine, 3. graceful signal,
    grace, SIGKILL of the process group, reap (process.py)."""
    if order.only_if_idle:
        expires = e.idle_expires_in()
        if e.state is not S.READY or expires is None or expires > 0:
            return  # a request came in meanwhile: its lease renewed the engine
    if e.state in PRE_SPAWN_STATES:  # the start was cancelled before any process
        a.set(S.STOPPED, f"stopped ({order.reason})")
        return
    if e.state in (S.STARTING, S.LOADING):  # cancelled mid-start: its process is gone
        a.set(S.STOPPING, "stopping")
        a.forget_process()
        a.set(S.STOPPED, f"stopped ({order.reason})")
        return
    proc = e.process
    if e.state is S.FAILED:
        if proc is not None:
            await a.launcher.discard(proc)
            a.forget_process()
        if order.reason in ("user", "shutdown"):
            a.set(S.STOPPED, "stopped")
        return
    if e.state not in (S.READY, S.DRAINING) or proc is None:
        return
    if order.fail_with is not None:  # wedged: the engine does not answer any more
        log.warning("Engine %s (%s) wedged: %s", e.id, e.ref.id, order.fail_with.detail)
        e.last_error = order.fail_with
        a.set(S.FAILED, order.fail_with.detail, error=order.fail_with)
        await a.launcher.discard(proc)
        a.forget_process()
        return
    if e.state is S.READY:
        # At once, before any await: from here no new lease is handed out.
        a.set(S.DRAINING, f"waiting for {e.inflight} answer(s) to finish")
    if order.drain and e.inflight and not await _drain(e, a, order):
        a.set(S.READY, "drain timed out: still serving")
        raise LegalAssistantError(
            "switch_timeout",
            f"{e.ref.id} still has {e.inflight} request(s) in flight after "
            f"{e.settings.drain_timeout_s:.0f}s",
        )
    if proc.running:
        try:
            await asyncio.wait_for(
                e.spec.before_stop(e.handle(), reason=order.reason), _STOP_HOOK_TIMEOUT_S
            )
        except Exception as exc:  # a hook must never keep an engine from stopping
            log.warning("before_stop hook of %s failed: %r", e.id, exc)
    a.set(S.STOPPING, f"stopping ({order.reason})")
    code = await a.launcher.discard(proc)
    a.forget_process()
    a.crash_loop.reset()
    e.ready_at = None
    a.set(S.STOPPED, f"stopped (exit code {code})")


async def _drain(e: Engine, a: RunnerAccess, order: StopOrder) -> bool:
    """Wait for the leases to end. False when the drain timed out and the policy says a
    switch must not cut answers ("error"); a user stop or "force" proceeds anyway."""
    deadline = time.monotonic() + e.settings.drain_timeout_s
    while e.inflight > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            cuts_allowed = e.settings.drain_policy == "force" or order.reason not in (
                "switch",
                "evicted",
            )
            return cuts_allowed
        idle = asyncio.ensure_future(a.pulse.wait(remaining))
        waker = asyncio.ensure_future(a.wake.wait())
        await asyncio.wait({idle, waker}, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()
        waker.cancel()
        a.wake.clear()  # commands are fields: the main loop reads them after the stop
        upgrade = a.peek_stop_order()
        if upgrade is not None and not upgrade.drain:  # "stop now" overrides the drain
            taken = a.take_stop_order()
            assert taken is not None
            order.done.extend(taken.done)
            order.reason = taken.reason
            return True
        with contextlib.suppress(Exception):
            if e.process is not None and not e.process.running:
                return True  # it died while draining: nothing left to wait for
    return True
