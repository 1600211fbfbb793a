"""Named race regressions, each looped so that a timing-dependent bug shows up, on the
fake engine (tests/fakes/fake_engine.py, a stand-in of mlx_lm.server) so a loop is fast.

* stop during start — at every phase of the start (model being resolved, process spawned,
  HTTP up and loading, just ready): the stop wins, no engine is left running, the waiting
  caller gets a clean error, and the next request starts the engine again;
* start during stop — a request that arrives while a stop is in progress is served by a
  fresh engine once the stop is done (never a lease on a dying engine);
* shutdown during start — at every phase: nothing runs after shutdown, ever;
* TTL vs. request (llama-swap #946), stronger than tests/runtime/test_residency.py: a
  tiny idle TTL, concurrent clients through the chat API and the gateway, every request
  served in full while the TTL fires between them;
* "same model loaded twice" (llama-swap #281, duplicate JIT instances): a cold model
  requested at once through the chat API, the gateway (plain and with progress comments)
  and under a second spelling of its path: one spawn;
* rapid switching A→B→A→B with requests in flight: no deadlock (global deadline), every
  answer complete, never two engines of a kind alive at once.

Every wait is bounded; no fixed sleep stands for "long enough".
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    ProcessSampler,
    engine_processes,
    fake_app_settings,
    serve_app,
    spawn_count,
)

from app_harness import RunningApp, chat, fake_model_dir, load_fake, poll
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.lifecycle import Engine
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

WAIT = 15.0
# Where a start is when the fault hits: queued for room (another engine of the kind is
# answering; the model itself is still stopped), process spawned, HTTP up and loading,
# just ready.
PHASES = ("queued", "starting", "loading", "ready")


fake_engine = load_fake("fake_engine")


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
async def make_sup() -> AsyncIterator[Callable[[Settings], Supervisor]]:
    made: list[Supervisor] = []

    def make(settings: Settings) -> Supervisor:
        sup = Supervisor(settings)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        await asyncio.wait_for(sup.shutdown(), WAIT)
    assert engine_processes() == []


def engine_of(sup: Supervisor, model: str) -> Engine | None:
    return next((e for e in sup.engines() if e.ref.id == model), None)


def running_for(path: Path) -> list[int]:
    """Pids of live engine processes serving the model directory `path`."""
    return [pid for pid, _, cmd in engine_processes() if str(path) in cmd]


async def reach(
    sup: Supervisor, model: str, phase: str, task: asyncio.Task[Any], other: Engine | None
) -> None:
    """Return as soon as `model`'s start is in `phase` (polled every 2 ms)."""

    def there() -> bool:
        e = engine_of(sup, model)
        if e is None:
            return False
        if phase == "ready":  # its caller may already have its lease, or not yet
            return e.state is EngineState.READY
        if task.done():
            return False
        if phase == "queued":
            assert other is not None
            return e.state is EngineState.QUEUED and other.draining
        if phase == "starting":
            return e.state is EngineState.STARTING and e.pid is not None
        assert phase == "loading"
        return e.state is EngineState.LOADING

    await poll(there, timeout=WAIT, interval=0.002, what=f"{model} to reach {phase}")


async def use_once(sup: Supervisor, model: str) -> str:
    """A caller: acquire, release at once; 'ok' or the error code."""
    try:
        lease = await sup.acquire(model)
    except LegalAssistantError as err:
        return err.code
    lease.release()
    return "ok"


def fake_sup_settings(base: Settings) -> Settings:
    return base.model_copy(update={"load_timeout_s": 10.0, "stop_grace_s": 1.0})


# ----------------------------------------------------------------------------- stop / start
async def test_stop_during_start_at_every_phase(
    make_sup: Callable[[Settings], Supervisor], fake_settings: Settings, tmp_path: Path
) -> None:
    spawns = tmp_path / "spawns.log"
    path = fake_model_dir(tmp_path, "a", start_delay=0.15, load_delay=0.15, spawn_log=str(spawns))
    model = f"mlx:{path}"
    other = f"mlx:{fake_model_dir(tmp_path, 'b')}"  # same kind: A must wait for its room
    sup = make_sup(fake_sup_settings(fake_settings))
    async with asyncio.timeout(60):
        for i in range(3 * len(PHASES)):
            phase = PHASES[i % len(PHASES)]
            held = await sup.acquire(other) if phase == "queued" else None
            waiter = asyncio.create_task(use_once(sup, model))
            await reach(sup, model, phase, waiter, held.engine if held else None)
            stopping = asyncio.create_task(sup.stop(model))
            await asyncio.sleep(0)  # the stop is issued ...
            if held is not None:
                held.release()  # ... then the answer that held up A's start ends
            stopped = await asyncio.wait_for(stopping, WAIT)
            outcome = await asyncio.wait_for(waiter, WAIT)
            engine = engine_of(sup, model)
            assert engine is not None
            # The stop won: A does not run, whatever its caller was waiting for.
            assert engine.state is EngineState.STOPPED, (phase, engine.state, outcome)
            assert running_for(path) == [], (phase, outcome)
            # The registry matches the live engines once the engine B that drained to make
            # room for A (phase "queued") has been reaped: its process can be gone a moment
            # before its runner removes its entry (seen once in CI). A stale entry still
            # fails here, after WAIT.
            await poll(
                lambda: (
                    sorted(e.pid for e in sup.registry.entries())
                    == sorted(p for p, _, _ in engine_processes())
                ),
                timeout=WAIT,
                interval=0.01,
                what="the registry to list exactly the live engine processes",
            )
            if phase == "ready":
                assert outcome in ("ok", "engine_stopped"), outcome
            else:
                assert outcome == "engine_stopped", (phase, outcome)
            assert stopped in ([engine], []), stopped
        # After all that, the model still starts and serves.
        assert await asyncio.wait_for(use_once(sup, model), WAIT) == "ok"
        assert len(running_for(path)) == 1


async def test_start_during_stop_is_served_by_a_fresh_engine(
    make_sup: Callable[[Settings], Supervisor], fake_settings: Settings, tmp_path: Path
) -> None:
    path = fake_model_dir(tmp_path, "a", load_delay=0.05)
    model = f"mlx:{path}"
    sup = make_sup(fake_sup_settings(fake_settings))
    rng = random.Random(7)
    async with asyncio.timeout(60):
        for i in range(16):
            engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
            old_pid = engine.pid
            assert old_pid is not None
            stopping = asyncio.create_task(sup.stop(model))
            # Arrive at a different moment of the stop each time: after 0..5 loop turns,
            # once the engine is STOPPING, once it is STOPPED.
            point = i % 4
            if point in (0, 3):
                for _ in range(rng.randrange(0, 6)):
                    await asyncio.sleep(0)
            else:
                target = EngineState.STOPPING if point == 1 else EngineState.STOPPED
                await poll(lambda e=engine, t=target: e.state is t, timeout=WAIT, interval=0)
            lease = await asyncio.wait_for(sup.acquire(model), WAIT)
            try:
                assert lease.engine.state is EngineState.READY and not lease.engine.draining
                assert lease.engine.pid is not None and lease.engine.pid != old_pid, (i, point)
                procs = engine_processes()
                assert [p for p, _, _ in procs] == [lease.engine.pid], procs
            finally:
                lease.release()
            await asyncio.wait_for(stopping, WAIT)
            assert engine.state is EngineState.READY  # the later request won


async def test_shutdown_during_start_at_every_phase(
    make_sup: Callable[[Settings], Supervisor], fake_settings: Settings, tmp_path: Path
) -> None:
    spawns = tmp_path / "spawns.log"
    path = fake_model_dir(tmp_path, "a", start_delay=0.15, load_delay=0.15, spawn_log=str(spawns))
    model = f"mlx:{path}"
    other = f"mlx:{fake_model_dir(tmp_path, 'b')}"
    async with asyncio.timeout(60):
        for i in range(2 * len(PHASES)):
            phase = PHASES[i % len(PHASES)]
            sup = make_sup(fake_sup_settings(fake_settings))
            held = await sup.acquire(other) if phase == "queued" else None
            waiter = asyncio.create_task(use_once(sup, model))
            await reach(sup, model, phase, waiter, held.engine if held else None)
            await asyncio.wait_for(sup.shutdown(), WAIT)
            assert engine_processes() == [], phase
            spawned = spawn_count(spawns)
            if held is not None:
                held.release()  # the request that held up A's start ends after shutdown
            outcome = await asyncio.wait_for(waiter, WAIT)
            assert outcome in (("ok", "shutting_down") if phase == "ready" else ("shutting_down",))
            # Nothing started after the shutdown either (not even briefly).
            assert spawn_count(spawns) == spawned, (phase, outcome)
            assert engine_processes() == [], (phase, outcome)
            assert all(e.state is EngineState.STOPPED for e in sup.engines()), phase
            assert sup.registry.entries() == []
            assert await use_once(sup, model) == "shutting_down"


# ----------------------------------------------------------------------------- TTL race
async def test_idle_ttl_never_cuts_a_request_under_concurrency(tmp_path: Path) -> None:
    """Stronger than test_residency's sequential version: 8 concurrent clients, chat API
    and gateway, in waves; after each wave the clients think for 0.85-1.3 x the TTL (a
    few ms apart), so each wave lands just before, on, or just after the instant the idle
    timer fires — and while the unload is in progress."""
    path = fake_model_dir(tmp_path, "a", tokens=5, token_rate=1000)
    model = f"mlx:{path}"
    ttl = 0.15
    settings = fake_app_settings(tmp_path, idle_ttl_s=ttl)
    rng = random.Random(946)
    failures: list[Any] = []

    async def one(app: RunningApp, k: int, think: float) -> None:
        await asyncio.sleep(think)  # the think time around the TTL is the test's input
        if k % 2:
            turn = await chat(app.client, message="Bonjour", model_id=model, timeout=WAIT)
            if turn.names[-1] != "done" or turn.text != fake_engine.expected_text(5):
                failures.append(turn.events)
        else:
            resp = await app.client.post(
                "/v1/completions", json={"model": model, "prompt": "x", "max_tokens": 3}
            )
            if resp.status_code != 200:
                failures.append(resp.text)

    with ProcessSampler() as sampler:
        async with asyncio.timeout(60), serve_app(settings) as app:
            for wave in range(12):
                base = rng.uniform(0.85, 1.3) * ttl if wave else 0.0
                thinks = [base + rng.uniform(0, 0.02) for _ in range(8)]
                await asyncio.gather(*(one(app, k + wave, t) for k, t in enumerate(thinks)))
            (engine,) = app.state.supervisor.engines()
            starts = engine.starts
    assert failures == []
    assert starts >= 3, f"the TTL fired {starts - 1} times: the race was barely exercised"
    assert sampler.max_by_kind.get("fake", 0) <= 1
    assert engine_processes() == []


# ----------------------------------------------------------------------------- loaded twice
async def test_same_cold_model_from_chat_and_gateway_spawns_once(tmp_path: Path) -> None:
    spawns = tmp_path / "spawns.log"
    path = fake_model_dir(tmp_path, "cold", start_delay=0.3, tokens=4, spawn_log=str(spawns))
    spellings = [f"mlx:{path}", f"mlx:{path}/"]  # the same directory, written two ways
    # "budget" residency could keep two engines side by side: a duplicate would show.
    settings = fake_app_settings(
        tmp_path, residency="budget", memory_budget_gb=64.0, gateway_progress_comments=True
    )
    expected = fake_engine.expected_text(4)

    async def via_chat(model: str) -> str:
        turn = await chat(app.client, message="Bonjour", model_id=model, timeout=WAIT)
        assert turn.names[-1] == "done", turn.events
        return turn.text

    async def via_gateway(model: str, stream: bool) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}
        if not stream:
            resp = await app.client.post("/v1/chat/completions", json=body)
            assert resp.status_code == 200, resp.text
            return str(resp.json()["choices"][0]["message"]["content"])
        async with app.client.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            datas = [ln[5:].strip() async for ln in resp.aiter_lines() if ln.startswith("data:")]
        assert datas[-1] == "[DONE]", datas
        chunks = [json.loads(d) for d in datas[:-1]]
        assert all("error" not in c for c in chunks), chunks
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )

    async with asyncio.timeout(90), serve_app(settings) as app:
        for round_ in range(4):
            calls = []
            for k in range(18):
                model = spellings[k % 2]
                if k % 3 == 0:
                    calls.append(via_chat(model))
                else:
                    calls.append(via_gateway(model, stream=k % 3 == 1))
            texts = await asyncio.gather(*calls)
            assert texts == [expected] * len(calls)
            assert spawn_count(spawns) == round_ + 1, "the same model was started twice"
            active = app.state.supervisor.active()
            assert len(active) == 1 and len(engine_processes()) == 1, active
            await asyncio.wait_for(app.state.supervisor.stop(), WAIT)  # cold again
            assert engine_processes() == []


# ----------------------------------------------------------------------------- rapid switch
async def test_rapid_switching_with_requests_in_flight(tmp_path: Path) -> None:
    a = f"mlx:{fake_model_dir(tmp_path, 'a', tokens=12, token_rate=150)}"
    b = f"mlx:{fake_model_dir(tmp_path, 'b', tokens=12, token_rate=150)}"
    expected = fake_engine.expected_text(12)
    rng = random.Random(119)
    settings = fake_app_settings(tmp_path)

    async def request(app: RunningApp, model: str, k: int) -> str:
        if k % 2:
            turn = await chat(app.client, message="Bonjour", model_id=model, timeout=60)
            assert turn.names[-1] == "done", turn.events
            return turn.text
        resp = await app.client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["choices"][0]["message"]["content"])

    with ProcessSampler() as sampler:
        async with asyncio.timeout(90), serve_app(settings) as app:
            tasks = []
            for k in range(24):
                tasks.append(asyncio.create_task(request(app, (a, b)[k % 2], k)))
                await asyncio.sleep(rng.uniform(0, 0.05))  # launch cadence (test input)
            texts = await asyncio.gather(*tasks)
            sup = app.state.supervisor
            assert all(e.inflight == 0 and not e.draining for e in sup.engines())
            starts = sum(e.starts for e in sup.engines())
    assert texts == [expected] * 24
    assert sampler.max_by_kind.get("fake", 0) == 1, sampler.describe()
    assert 2 <= starts <= 24
    assert engine_processes() == []


# ----------------------------------------------------------------------------- cold pair
async def test_two_cold_models_of_one_kind_never_start_together(
    make_sup: Callable[[Settings], Supervisor], fake_settings: Settings, tmp_path: Path
) -> None:
    """Found by the switch storm: two cold models of the same kind requested at the same
    instant. The second request's placement could run between the first one's decision
    to start (task created) and that start's first step (state still STOPPED), so the
    "swap" policy saw no resident engine and both started. Checked exactly, on the event
    bus (published synchronously on every transition), and by the process table."""
    a = f"mlx:{fake_model_dir(tmp_path, 'a', start_delay=0.05)}"
    b = f"mlx:{fake_model_dir(tmp_path, 'b', start_delay=0.05)}"
    sup = make_sup(fake_sup_settings(fake_settings))
    live: set[str] = set()
    most = 0
    active = {EngineState.STARTING, EngineState.LOADING, EngineState.READY, EngineState.STOPPING}

    async def watch() -> None:
        nonlocal most
        with sup.bus.subscribe() as sub:
            ready.set()
            async for ev in sub:
                (live.add if ev.new in active else live.discard)(ev.engine)
                most = max(most, len(live))

    ready = asyncio.Event()
    watcher = asyncio.create_task(watch())
    await ready.wait()
    try:
        with ProcessSampler() as sampler:
            async with asyncio.timeout(60):
                for _ in range(10):
                    outcomes = await asyncio.gather(use_once(sup, a), use_once(sup, b))
                    assert outcomes == ["ok", "ok"]
                    await asyncio.wait_for(sup.stop(), WAIT)  # both cold again
    finally:
        watcher.cancel()
    assert most == 1, f"{most} engines of one kind were active at once"
    assert sampler.max_by_kind.get("fake", 0) == 1, sampler.describe()
