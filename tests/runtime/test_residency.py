"""Residency policies: memory-budget eviction (LRU idle, never busy), idle TTL (never under a
request, race-free by construction), preload. Edge cases on the fake engine (a stand-in of
mlx_lm.server, tests/fakes/fake_engine.py); one test on the real engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from legal_assistant.config import ModelOverride, Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor


def budget_settings(base: Settings, models: dict[str, float], budget_gb: float) -> Settings:
    return base.model_copy(
        update={
            "residency": "budget",
            "memory_budget_gb": budget_gb,
            "models": {m: ModelOverride(memory_gb=gb) for m, gb in models.items()},
        }
    )


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_for_state(sup: Supervisor, model: str, state: EngineState, timeout: float) -> None:
    async def wait() -> None:
        with sup.bus.subscribe() as sub:
            engine = next((e for e in sup.engines() if e.ref.id == model), None)
            if engine is not None and engine.state is state:
                return
            async for ev in sub:
                if ev.model == model and ev.new is state:
                    return

    await asyncio.wait_for(wait(), timeout)


async def test_budget_evicts_least_recently_used_idle_engine(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a, b, c = (f"mlx:{fake_model(n)}" for n in ("a", "b", "c"))
    sup = make_sup(budget_settings(fake_settings, {a: 1.0, b: 1.0, c: 1.0}, budget_gb=2.5))
    ea = await sup.ensure_ready(a)
    eb = await sup.ensure_ready(b)
    assert ea.state is EngineState.READY and eb.state is EngineState.READY  # both fit
    await sup.ensure_ready(a)  # a is now the most recently used
    ec = await sup.ensure_ready(c)
    assert ec.state is EngineState.READY
    assert ea.state is EngineState.READY and alive(ea.pid)
    assert eb.state is EngineState.STOPPED and not alive(eb.pid)
    status = sup.residency()
    assert status["policy"] == "budget"
    assert status["memory_estimate_bytes"] == 2 * 1024**3


async def test_budget_never_evicts_an_engine_with_requests_in_flight(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a, b, c = (f"mlx:{fake_model(n)}" for n in ("a", "b", "c"))
    sup = make_sup(budget_settings(fake_settings, {a: 1.0, b: 1.0, c: 1.0}, budget_gb=2.5))
    lease_a = await sup.acquire(a)  # a is the LRU one, but busy
    eb = await sup.ensure_ready(b)
    ec = await sup.ensure_ready(c)
    assert lease_a.engine.state is EngineState.READY and alive(lease_a.engine.pid)
    assert eb.state is EngineState.STOPPED
    assert ec.state is EngineState.READY
    lease_a.release()


async def test_budget_waits_for_a_busy_engine_then_evicts_it(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a, b = (f"mlx:{fake_model(n)}" for n in ("a", "b"))
    sup = make_sup(budget_settings(fake_settings, {a: 2.0, b: 2.0}, budget_gb=3.0))
    lease_a = await sup.acquire(a)
    queued = asyncio.Event()

    def on_event(ev: EngineEvent) -> None:
        if ev.phase == "queued":
            queued.set()

    start_b = asyncio.create_task(sup.ensure_ready(b, on_event=on_event))
    await asyncio.wait_for(queued.wait(), 10)
    assert not start_b.done() and lease_a.engine.state is EngineState.READY
    lease_a.release()
    eb = await asyncio.wait_for(start_b, 20)
    assert eb.state is EngineState.READY and lease_a.engine.state is EngineState.STOPPED


async def test_budget_full_of_busy_engines_times_out_cleanly(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a, b = (f"mlx:{fake_model(n)}" for n in ("a", "b"))
    settings = budget_settings(fake_settings, {a: 2.0, b: 2.0}, budget_gb=3.0)
    sup = make_sup(settings.model_copy(update={"drain_timeout_s": 1.0}))
    lease_a = await sup.acquire(a)
    with pytest.raises(LegalAssistantError) as err:
        await sup.ensure_ready(b)
    assert err.value.code == "switch_timeout"
    assert lease_a.engine.state is EngineState.READY
    lease_a.release()


async def test_idle_ttl_unloads_after_the_idle_period_not_during_a_request(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a = f"mlx:{fake_model('a')}"
    sup = make_sup(fake_settings.model_copy(update={"idle_ttl_s": 0.6}))
    lease = await sup.acquire(a)
    engine = lease.engine
    # Held for longer than the TTL: the engine must stay up while the request runs.
    held_until = time.monotonic() + 1.5
    while time.monotonic() < held_until:
        assert engine.state is EngineState.READY
        await asyncio.sleep(0.05)
    released_at = time.monotonic()
    lease.release()
    await wait_for_state(sup, a, EngineState.STOPPED, timeout=10)
    assert time.monotonic() - released_at >= 0.6  # counted from the end of the request
    assert not alive(engine.pid)


async def test_per_model_ttl_override(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a = f"mlx:{fake_model('a')}"
    settings = fake_settings.model_copy(update={"models": {a: ModelOverride(idle_ttl_s=0.3)}})
    sup = make_sup(settings)
    engine = await sup.ensure_ready(a)
    assert engine.status()["idle_ttl_s"] == 0.3
    await wait_for_state(sup, a, EngineState.STOPPED, timeout=10)


async def test_request_arriving_as_the_ttl_fires_is_always_served(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    """Regression guard for the TTL-vs-new-request race (llama-swap #946): a request that
    arrives at the very moment the idle timer fires must get a READY engine that answers,
    never a lease on an engine being stopped."""
    a = f"mlx:{fake_model('a', tokens=2)}"
    ttl = 0.15
    sup = make_sup(fake_settings.model_copy(update={"idle_ttl_s": ttl}))
    restarts = 0
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for i in range(25):
            lease = await sup.acquire(a)
            pid = lease.engine.pid
            lease.release()
            # Aim at the expiry instant, a little before or after, across iterations.
            await asyncio.sleep(ttl + (i % 5 - 2) * 0.01)
            async with sup.lease(a) as held:
                assert held.engine.state is EngineState.READY and not held.engine.draining
                restarts += held.engine.pid != pid
                resp = await client.post(
                    f"{held.engine.base_url}/v1/completions",
                    json={"model": held.engine.served_model, "prompt": "x", "max_tokens": 2},
                )
                assert resp.status_code == 200
    assert sup.engines()[0].starts == restarts + 1


async def test_preload_starts_in_background(
    fake_settings: Settings, fake_model: Callable[..., Path], make_sup: Callable[..., Supervisor]
) -> None:
    a = f"mlx:{fake_model('a', start_delay=0.5)}"
    sup = make_sup(fake_settings.model_copy(update={"preload": [a]}))
    t0 = time.monotonic()
    task = sup.preload(sup.settings.preload)
    assert task is not None and time.monotonic() - t0 < 0.05
    await asyncio.wait_for(task, 20)
    engine = next(e for e in sup.engines() if e.ref.id == a)
    assert engine.state is EngineState.READY


def test_preload_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGAL_ASSISTANT_PRELOAD", "mlx:smollm2-135m, ollama:qwen2.5:7b")
    assert Settings().preload == ["mlx:smollm2-135m", "ollama:qwen2.5:7b"]


async def test_budget_keeps_two_real_mlx_engines_loaded(
    settings: Settings, second_model: Path, make_sup: Callable[..., Supervisor]
) -> None:
    """The real engine: two models resident at once under a budget that fits both."""
    sup = make_sup(settings.model_copy(update={"residency": "budget", "memory_budget_gb": 8.0}))
    first = await sup.ensure_ready("mlx:smollm2-135m")
    second = await sup.ensure_ready(f"mlx:{second_model}")
    assert alive(first.pid) and alive(second.pid) and first.pid != second.pid
    assert first.state is EngineState.READY and second.state is EngineState.READY
    assert first.weights_bytes and first.weights_bytes > 50_000_000
    assert first.status()["rss_bytes"] and first.memory_estimate() > 50_000_000
