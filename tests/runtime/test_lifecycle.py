"""Engine lifecycle through the Supervisor, against the fake `mlx_lm.server`.

Real subprocesses, real signals, real HTTP; no mocks. Nothing here sleeps "long enough":
every wait is on an event, a task or a polled condition, bounded by a generous timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_harness import pid_gone, wait_until
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.events import EngineEvent, Subscription
from legal_assistant.runtime.lifecycle import Engine
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

# Upper bound for anything that should happen "soon" (a start, a stop, an event).
WAIT = 15.0


# --------------------------------------------------------------------------- helpers
def mid(path: Path) -> str:
    return f"mlx:{path}"


def spawn_lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


async def spawned_pid(log: Path) -> int:
    """The pid the fake engine wrote to its spawn log (waits for the line)."""
    await wait_until(lambda: bool(spawn_lines(log)), WAIT, what=f"a line in {log}")
    (pid,) = spawn_lines(log)
    return int(pid)


async def next_event(
    sub: Subscription, pred: Callable[[EngineEvent], bool], timeout: float = WAIT
) -> EngineEvent:
    async def scan() -> EngineEvent:
        while True:
            ev = await sub.queue.get()
            if pred(ev):
                return ev

    return await asyncio.wait_for(scan(), timeout)


async def expect_error(coro: Any, timeout: float = WAIT) -> tuple[LegalAssistantError, float]:
    t0 = time.monotonic()
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(coro, timeout)
    return info.value, time.monotonic() - t0


def transitions(events: list[EngineEvent]) -> list[tuple[EngineState, EngineState]]:
    return [(e.old, e.new) for e in events if e.old != e.new]


async def stream_chat(
    engine: Engine,
    on_token: Callable[[str], None] | None = None,
) -> tuple[list[str], bool]:
    """Stream one chat completion; return (token pieces, saw [DONE])."""
    body = {
        "model": engine.served_model,
        "messages": [{"role": "user", "content": "Bonjour"}],
        "stream": True,
    }
    pieces: list[str] = []
    done = False
    async with (
        httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(30.0)) as client,
        client.stream("POST", f"{engine.base_url}/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: ") :]
            if data == "[DONE]":
                done = True
                continue
            delta = json.loads(data)["choices"][0].get("delta", {})
            if delta.get("content"):
                pieces.append(delta["content"])
                if on_token is not None:
                    on_token(delta["content"])
    return pieces, done


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def sup(make_sup: Callable[[Settings], Supervisor], fake_settings: Settings) -> Supervisor:
    return make_sup(fake_settings)


@pytest.fixture
def spawn_log(tmp_path: Path) -> Path:
    return tmp_path / "spawns.log"


# --------------------------------------------------------------------------- 1
async def test_single_flight_100_concurrent_acquires(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path
) -> None:
    model = mid(fake_model("a", start_delay=0.5, spawn_log=str(spawn_log)))

    leases = await asyncio.wait_for(asyncio.gather(*(sup.acquire(model) for _ in range(100))), WAIT)

    assert len(spawn_lines(spawn_log)) == 1
    pids = {lease.engine.pid for lease in leases}
    assert len(pids) == 1 and None not in pids
    assert int(spawn_lines(spawn_log)[0]) == pids.pop()
    (engine,) = sup.engines()
    assert engine.state is EngineState.READY
    assert engine.inflight == 100
    assert all(lease.started for lease in leases)  # every caller waited for the start
    for lease in leases:
        lease.release()
        lease.release()  # idempotent: a double release does not go negative
    assert engine.inflight == 0
    assert engine.starts == 1


# --------------------------------------------------------------------------- 2
async def test_start_events_in_order_to_bus_and_callback(
    sup: Supervisor, fake_model: Callable[..., Path]
) -> None:
    model = mid(fake_model("a", load_delay=0.2))
    seen: list[EngineEvent] = []

    with sup.bus.subscribe() as sub:
        lease = await asyncio.wait_for(sup.acquire(model, on_event=seen.append), WAIT)
        lease.release()
        published: list[EngineEvent] = []
        while not sub.queue.empty():
            published.append(sub.queue.get_nowait())

    engine = lease.engine
    expected = [
        (EngineState.STOPPED, EngineState.PREPARING),
        (EngineState.PREPARING, EngineState.QUEUED),
        (EngineState.QUEUED, EngineState.STARTING),
        (EngineState.STARTING, EngineState.LOADING),
        (EngineState.LOADING, EngineState.READY),
    ]
    for events in (published, seen):
        assert transitions(events) == expected
        assert {e.engine for e in events} == {engine.id}
        assert {e.model for e in events} == {model}
        assert [e.phase for e in events if e.old != e.new] == [
            "preparing",
            "queued",
            "starting",
            "loading",
            "ready",
        ]
        stamps = [e.ts for e in events]
        assert stamps == sorted(stamps)
    # The progress event naming the pid and port is part of the stream too.
    assert any(e.old == e.new and f"pid {engine.pid}" in e.detail for e in published)

    # A second acquire on the ready engine publishes nothing and calls back nothing.
    more: list[EngineEvent] = []
    with sup.bus.subscribe() as sub:
        lease = await sup.acquire(model, on_event=more.append)
        lease.release()
        assert sub.queue.empty()
    assert more == []
    assert lease.started is False and lease.waited_s == 0.0


# --------------------------------------------------------------------------- 3
async def test_cancelled_waiter_does_not_abort_the_start(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path
) -> None:
    model = mid(fake_model("a", start_delay=1.0, spawn_log=str(spawn_log)))

    with sup.bus.subscribe() as sub:
        quitter = asyncio.create_task(sup.acquire(model))
        stayer = asyncio.create_task(sup.acquire(model))
        # Cancel while the engine process is alive but still in its start delay.
        await next_event(sub, lambda e: e.phase == "starting" and "pid" in e.detail)
        (engine,) = sup.engines()
        assert engine.state is EngineState.STARTING
        quitter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await quitter

        lease = await asyncio.wait_for(stayer, WAIT)
    assert lease.engine.state is EngineState.READY
    assert lease.engine.inflight == 1  # the cancelled caller holds no lease
    lease.release()
    assert len(spawn_lines(spawn_log)) == 1
    assert engine.starts == 1


# --------------------------------------------------------------------------- 4
async def test_stall_timeout_when_engine_hangs(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
    spawn_log: Path,
) -> None:
    sup = make_sup(fake_settings.model_copy(update={"load_timeout_s": 1.0}))
    model = mid(fake_model("a", hang=True, spawn_log=str(spawn_log)))

    err, elapsed = await expect_error(sup.acquire(model))

    assert err.code == "timeout"
    assert 1.0 <= elapsed < 6.0, elapsed
    pid = await spawned_pid(spawn_log)
    await wait_until(lambda: pid_gone(pid), WAIT, what=f"hung engine {pid} to be gone")
    (engine,) = sup.engines()
    assert engine.state is EngineState.FAILED
    assert engine.pid is None
    assert engine.last_error is err
    assert sup.registry.entries() == []


async def test_slow_start_within_limit_succeeds(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    sup = make_sup(fake_settings.model_copy(update={"load_timeout_s": 5.0}))
    model = mid(fake_model("a", start_delay=2.0))

    t0 = time.monotonic()
    lease = await asyncio.wait_for(sup.acquire(model), WAIT)
    lease.release()

    assert time.monotonic() - t0 >= 2.0
    assert lease.engine.state is EngineState.READY
    assert lease.waited_s >= 2.0


# --------------------------------------------------------------------------- 5
async def test_crash_at_start(sup: Supervisor, fake_model: Callable[..., Path]) -> None:
    model = mid(fake_model("a", crash_at_start=3))

    err, elapsed = await expect_error(sup.acquire(model))

    assert err.code == "engine_crashed"
    assert "exit code 3" in err.detail
    assert any("fake_engine: crash_at_start (exit code 3)" in ln for ln in err.log_tail)
    assert elapsed < 5.0
    (engine,) = sup.engines()
    assert engine.state is EngineState.FAILED
    assert any("crash_at_start" in ln for ln in engine.logs())


# --------------------------------------------------------------------------- 6
async def test_engine_not_installed_missing_executable(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    sup = make_sup(fake_settings.model_copy(update={"mlx_command": ["/nonexistent/mlx_lm_server"]}))

    err, elapsed = await expect_error(sup.acquire(mid(fake_model("a"))))

    assert err.code == "engine_not_installed"
    assert "/nonexistent/mlx_lm_server" in err.detail
    assert elapsed < 2.0
    assert sup.engines()[0].state is EngineState.FAILED


async def test_engine_not_installed_missing_module(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    command = [sys.executable, "-I", "-S", "-m", "mlx_lm", "server"]
    sup = make_sup(fake_settings.model_copy(update={"mlx_command": command}))

    err, elapsed = await expect_error(sup.acquire(mid(fake_model("a"))))

    assert err.code == "engine_not_installed"
    assert elapsed < 5.0
    assert "No module named" in err.detail or any("No module named" in ln for ln in err.log_tail)
    assert (
        err.message("fr")
        == "❌ Échec du démarrage du serveur MLX. Vérifiez que mlx-lm est installé (uv sync)."
    )
    assert sup.engines()[0].pid is None


# --------------------------------------------------------------------------- 7
@pytest.mark.parametrize(
    ("line", "code"),
    [
        (
            "ERROR - mlx_lm.server generation thread died: "
            "RepositoryNotFoundError: 404 Client Error",
            "model_not_found",
        ),
        ("ERROR - mlx_lm.server generation thread died: boom", "engine_wedged"),
    ],
    ids=["model_not_found", "engine_wedged"],
)
async def test_fatal_line_during_start(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path, line: str, code: str
) -> None:
    model = mid(fake_model("a", fatal_line=line, spawn_log=str(spawn_log)))

    err, elapsed = await expect_error(sup.acquire(model))

    assert err.code == code, err
    assert elapsed < 5.0
    pid = await spawned_pid(spawn_log)
    await wait_until(lambda: pid_gone(pid), WAIT, what="engine with a fatal line to be stopped")
    (engine,) = sup.engines()
    assert engine.state is EngineState.FAILED
    assert engine.last_error is not None and engine.last_error.code == code


# --------------------------------------------------------------------------- 8
async def test_fixed_port_busy(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
    spawn_log: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        sup = make_sup(fake_settings.model_copy(update={"mlx_port": port}))

        err, elapsed = await expect_error(
            sup.acquire(mid(fake_model("a", spawn_log=str(spawn_log))))
        )

    assert err.code == "port_busy"
    assert elapsed < 5.0
    assert str(port) in err.detail
    assert f"pid {os.getpid()}" in err.detail
    assert f"pid {os.getpid()}" in err.message("fr")
    assert spawn_lines(spawn_log) == []
    assert sup.engines()[0].state is EngineState.FAILED


# --------------------------------------------------------------------------- 9
async def test_switch_waits_for_inflight_stream(
    sup: Supervisor, fake_model: Callable[..., Path]
) -> None:
    model_a = mid(fake_model("a", token_rate=20, tokens=30))
    model_b = mid(fake_model("b"))
    order: list[str] = []
    first_token = asyncio.Event()

    lease_a = await asyncio.wait_for(sup.acquire(model_a), WAIT)
    engine_a = lease_a.engine
    pid_a = engine_a.pid
    assert pid_a is not None

    async def stream_a() -> tuple[list[str], bool]:
        try:
            return await stream_chat(engine_a, on_token=lambda _: first_token.set())
        finally:
            order.append("stream_done")
            lease_a.release()

    def on_b(ev: EngineEvent) -> None:
        if ev.old != ev.new:
            order.append(f"B:{ev.new}")

    streaming = asyncio.create_task(stream_a())
    await asyncio.wait_for(first_token.wait(), WAIT)
    acquiring_b = asyncio.create_task(sup.acquire(model_b, on_event=on_b))

    await asyncio.wait_for(asyncio.shield(streaming), WAIT)
    # The A answer is complete, and B has not spawned yet: it resolved its model and
    # queued for room while A answered.
    assert not acquiring_b.done()
    pieces, done = streaming.result()
    assert len(pieces) == 30 and done

    lease_b = await asyncio.wait_for(acquiring_b, WAIT)
    lease_b.release()
    assert order == [
        "B:preparing",
        "B:queued",
        "stream_done",
        "B:starting",
        "B:loading",
        "B:ready",
    ]
    assert lease_b.engine.state is EngineState.READY
    assert engine_a.state is EngineState.STOPPED
    assert pid_gone(pid_a)


# --------------------------------------------------------------------------- 10
async def test_switch_timeout_keeps_old_engine(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    sup = make_sup(
        fake_settings.model_copy(update={"drain_policy": "error", "drain_timeout_s": 1.0})
    )
    model_a, model_b = mid(fake_model("a")), mid(fake_model("b"))
    lease_a = await asyncio.wait_for(sup.acquire(model_a), WAIT)
    engine_a = lease_a.engine

    err, elapsed = await expect_error(sup.acquire(model_b))

    assert err.code == "switch_timeout"
    assert 1.0 <= elapsed < 5.0
    assert model_a in err.detail
    assert engine_a.state is EngineState.READY and not engine_a.draining
    pieces, done = await asyncio.wait_for(stream_chat(engine_a), WAIT)
    assert done and pieces
    # A still takes new requests.
    extra = await sup.acquire(model_a)
    assert extra.engine is engine_a and extra.started is False
    extra.release()

    lease_a.release()
    lease_b = await asyncio.wait_for(sup.acquire(model_b), WAIT)
    lease_b.release()
    assert lease_b.engine.state is EngineState.READY
    assert engine_a.state is EngineState.STOPPED


# --------------------------------------------------------------------------- 11
async def test_stop_escalates_to_sigkill(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    sup = make_sup(fake_settings.model_copy(update={"stop_grace_s": 0.5}))
    model = mid(fake_model("a", ignore_sigterm=True))
    engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    pid = engine.pid
    assert pid is not None

    with sup.bus.subscribe() as sub:
        t0 = time.monotonic()
        await asyncio.wait_for(sup.stop(model), WAIT)
        elapsed = time.monotonic() - t0
        stopped = await next_event(sub, lambda e: e.new is EngineState.STOPPED)

    assert 0.5 <= elapsed < 3.0, elapsed
    assert pid_gone(pid)
    assert engine.state is EngineState.STOPPED
    assert engine.pid is None
    # SIGTERM was ignored: the exit came from the SIGKILL escalation.
    assert stopped.detail == f"stopped (exit code {-signal.SIGKILL})"
    assert sup.registry.entries() == []


# --------------------------------------------------------------------------- 12
async def test_sigkilled_engine_fails_then_restarts(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path
) -> None:
    model = mid(fake_model("a", spawn_log=str(spawn_log)))
    engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    pid = engine.pid
    assert pid is not None

    with sup.bus.subscribe() as sub:
        os.kill(pid, signal.SIGKILL)
        ev = await next_event(sub, lambda e: e.new is EngineState.FAILED)

    assert ev.engine == engine.id and ev.model == model
    assert ev.error_code == "engine_crashed"
    assert engine.state is EngineState.FAILED
    assert engine.last_error is not None and engine.last_error.code == "engine_crashed"
    assert not engine.is_available()

    lease = await asyncio.wait_for(sup.acquire(model), WAIT)
    lease.release()
    assert lease.engine is engine and lease.started
    assert engine.state is EngineState.READY
    assert engine.pid is not None and engine.pid != pid
    assert len(spawn_lines(spawn_log)) == 2
    assert engine.starts == 2


# --------------------------------------------------------------------------- 13
async def test_stop_during_start(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path
) -> None:
    model = mid(fake_model("a", start_delay=2.0, spawn_log=str(spawn_log)))

    with sup.bus.subscribe() as sub:
        acquiring = asyncio.create_task(sup.acquire(model))
        await next_event(sub, lambda e: e.phase == "starting" and "pid" in e.detail)
    (engine,) = sup.engines()
    pid = await spawned_pid(spawn_log)
    assert engine.state is EngineState.STARTING

    t0 = time.monotonic()
    await asyncio.wait_for(sup.stop(model), WAIT)
    assert time.monotonic() - t0 < 3.0
    assert pid_gone(pid)
    assert engine.state is EngineState.STOPPED
    assert engine.pid is None

    # The caller that was waiting for the start is told, rather than restarting the engine
    # that was just stopped.
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(acquiring, WAIT)
    assert info.value.code == "engine_stopped"
    assert engine.state is EngineState.STOPPED
    assert len(spawn_lines(spawn_log)) == 1

    fake_model("a", spawn_log=str(spawn_log))  # same model, now quick to start
    lease = await asyncio.wait_for(sup.acquire(model), WAIT)
    lease.release()
    assert engine.state is EngineState.READY
    assert len(spawn_lines(spawn_log)) == 2


# --------------------------------------------------------------------------- 14
async def test_shutdown_during_start(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path
) -> None:
    model = mid(fake_model("a", start_delay=2.0, spawn_log=str(spawn_log)))

    with sup.bus.subscribe() as sub:
        acquiring = asyncio.create_task(sup.acquire(model))
        await next_event(sub, lambda e: e.phase == "starting" and "pid" in e.detail)
    pid = await spawned_pid(spawn_log)
    assert sup.engines()[0].state is EngineState.STARTING

    running = await asyncio.wait_for(sup.shutdown(), WAIT)

    assert [e.ref.id for e in running] == [model]
    assert pid_gone(pid)
    assert all(e.state is EngineState.STOPPED for e in sup.engines())
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(acquiring, WAIT)
    assert info.value.code == "shutting_down"
    with pytest.raises(LegalAssistantError) as info:
        await sup.acquire(model)
    assert info.value.code == "shutting_down"
    assert len(spawn_lines(spawn_log)) == 1
    assert sup.registry.entries() == []


# --------------------------------------------------------------------------- 15
async def test_crash_mid_stream(
    sup: Supervisor, fake_model: Callable[..., Path], spawn_log: Path
) -> None:
    model = mid(fake_model("a", crash_after_tokens=3, tokens=20, spawn_log=str(spawn_log)))
    engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    pid = engine.pid

    with sup.bus.subscribe() as sub:
        async with sup.lease(model) as lease:
            assert lease.engine is engine
            # HTTP/1.0 close-delimited stream: a dead server is an error or a cut answer.
            try:
                pieces, done = await asyncio.wait_for(stream_chat(engine), WAIT)
            except httpx.HTTPError:
                pieces, done = [], False
            assert not done
            assert len(pieces) < 20
        ev = await next_event(sub, lambda e: e.new is EngineState.FAILED)

    assert ev.error_code == "engine_crashed"
    assert engine.state is EngineState.FAILED
    assert any("crash_after_tokens" in ln for ln in engine.logs())
    assert pid is not None and pid_gone(pid)

    lease = await asyncio.wait_for(sup.acquire(model), WAIT)
    lease.release()
    assert engine.state is EngineState.READY
    assert engine.pid not in (None, pid)
    assert len(spawn_lines(spawn_log)) == 2


# --------------------------------------------------------------------------- misc
async def test_lease_context_manager_counts_inflight(
    sup: Supervisor, fake_model: Callable[..., Path]
) -> None:
    model = mid(fake_model("a"))
    async with contextlib.AsyncExitStack() as stack:
        leases = [await stack.enter_async_context(sup.lease(model)) for _ in range(3)]
        assert leases[0].engine.inflight == 3
        assert len({lease.engine.id for lease in leases}) == 1
    assert leases[0].engine.inflight == 0
