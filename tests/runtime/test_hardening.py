"""Hardening of the supervisor: crash-loop backoff, and engines started without the
backend's secrets. On the fake engine (tests/fakes/fake_engine.py, a stand-in of
mlx_lm.server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.supervisor import Supervisor


async def test_crash_loop_backs_off_instead_of_respawning(
    fake_settings: Settings, fake_model: Callable[..., Path], tmp_path: Path
) -> None:
    spawns = tmp_path / "spawns.log"
    model = f"mlx:{fake_model('crashy', crash_at_start=3, spawn_log=str(spawns))}"
    sup = Supervisor(fake_settings)

    def spawned() -> int:
        return len(spawns.read_text().split()) if spawns.exists() else 0

    try:
        for expected in (1, 2):  # the first two failures retry at once
            with pytest.raises(LegalAssistantError) as err:
                await sup.ensure_ready(model)
            assert err.value.code == "engine_crashed" and spawned() == expected
        # Now it backs off: the next request fails at once, with the last lines, no spawn.
        t0 = time.monotonic()
        with pytest.raises(LegalAssistantError) as err:
            await sup.ensure_ready(model)
        assert time.monotonic() - t0 < 0.5 and spawned() == 2
        assert err.value.code == "engine_crashed" and "2 failed starts" in err.value.detail
        assert any("crash_at_start" in line for line in err.value.log_tail)
        engine = sup.engines()[0]
        retry_in = engine.status()["retry_in_s"]
        assert retry_in is not None and 0 < retry_in <= 1.0
        await asyncio.sleep(retry_in + 0.05)  # the backoff delay itself is the behaviour
        with pytest.raises(LegalAssistantError):
            await sup.ensure_ready(model)
        assert spawned() == 3
        assert engine.status()["retry_in_s"] > 1.0  # 2 s after the third failure
    finally:
        await sup.shutdown()


async def test_engine_environment_carries_no_backend_secrets(
    fake_settings: Settings, fake_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGAL_ASSISTANT_API_KEY", "s3cret-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    sup = Supervisor(fake_settings)
    try:
        engine = await sup.ensure_ready(f"mlx:{fake_model('a')}")
        environ = Path(f"/proc/{engine.pid}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if item}
    finally:
        await sup.shutdown()
    assert "LEGAL_ASSISTANT_API_KEY" not in names and "OPENAI_API_KEY" not in names
    assert {"PATH", "HF_HOME", "HF_HUB_DISABLE_TELEMETRY"} <= names


async def test_acquire_events_reader_leaving_keeps_the_start_and_leaks_no_lease(
    fake_settings: Settings, fake_model: Callable[..., Path]
) -> None:
    """A streaming caller (chat, seed SSE start, gateway) that goes away mid-start ends
    only its own wait: the engine still becomes ready, and no lease is left held."""
    import contextlib

    from legal_assistant.runtime.lifecycle import Lease
    from legal_assistant.runtime.state import EngineState

    model = f"mlx:{fake_model('slow', start_delay=0.5)}"
    sup = Supervisor(fake_settings)
    try:
        events = sup.acquire_events(model)
        async with contextlib.aclosing(events):
            first = await anext(events)
            assert first is not None and not isinstance(first, Lease)
        engine = sup.engines()[0]
        async with sup.lease(model) as lease:  # joins the start that kept going
            assert lease.engine is engine and engine.starts == 1
        assert engine.state is EngineState.READY and engine.inflight == 0

        # Read to the end: the lease comes last and belongs to the caller.
        items = []
        async with contextlib.aclosing(sup.acquire_events(model)) as again:
            items = [item async for item in again]
        assert isinstance(items[-1], Lease) and engine.inflight == 1
        items[-1].release()
        assert engine.inflight == 0
    finally:
        await sup.shutdown()
