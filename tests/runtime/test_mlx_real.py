"""The supervisor against the real `mlx_lm.server` and the bundled model (no stand-in)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest

from legal_assistant.catalog import parse_model_id
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

BUNDLED = "mlx:smollm2-135m"


@pytest.fixture
async def sup(settings: Settings) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(settings)
    try:
        yield supervisor
    finally:
        await supervisor.shutdown()


async def chat(base_url: str, model: str, prompt: str, max_tokens: int = 12) -> str:
    async with httpx.AsyncClient(timeout=120) as client:
        resp = await client.post(
            f"{base_url}/v1/chat/completions",
            content=json.dumps(
                {
                    "model": model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        resp.raise_for_status()
        return str(resp.json()["choices"][0]["message"]["content"])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_cold_start_ready_answers_then_reuse(sup: Supervisor) -> None:
    events: list[EngineEvent] = []
    engine = await sup.ensure_ready(BUNDLED, on_event=events.append)
    assert engine.state is EngineState.READY
    phases = [e.new for e in events if e.old != e.new]
    assert phases == [
        EngineState.PREPARING,
        EngineState.QUEUED,
        EngineState.STARTING,
        EngineState.LOADING,
        EngineState.READY,
    ]
    assert engine.served_model is not None
    answer = await chat(engine.base_url, engine.served_model, "What is the capital of France?")
    assert "Paris" in answer
    pid = engine.pid
    assert pid is not None and psutil.pid_exists(pid)

    # Reuse (seed scenario 2): instant, silent, same process.
    again: list[EngineEvent] = []
    t0 = time.monotonic()
    lease = await sup.acquire(BUNDLED, on_event=again.append)
    lease.release()
    assert time.monotonic() - t0 < 0.05
    assert again == [] and lease.engine.pid == pid and not lease.started

    logs = engine.logs()
    assert any("Starting httpd" in line for line in logs)


async def test_switch_between_two_model_paths(sup: Supervisor, second_model: Path) -> None:
    first = await sup.ensure_ready(BUNDLED)
    old_pid = first.pid
    assert old_pid is not None
    second = await sup.ensure_ready(f"mlx:{second_model}")
    assert second is not first and second.pid not in (None, old_pid)
    assert gone(old_pid)
    assert first.state is EngineState.STOPPED
    assert second.served_model == str(second_model)
    assert await chat(second.base_url, second.served_model, "Hello", max_tokens=3)
    assert [e.ref.id for e in sup.active("mlx")] == [f"mlx:{second_model}"]


async def test_stop_ends_the_process(sup: Supervisor) -> None:
    engine = await sup.ensure_ready(BUNDLED)
    pid = engine.pid
    assert pid is not None
    await sup.stop(BUNDLED)
    assert engine.state is EngineState.STOPPED and gone(pid)
    assert sup.registry.entries() == []


async def test_missing_model_offline_is_classified_fast(
    sup: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(LegalAssistantError) as err:
        await sup.ensure_ready("mlx:nobody/no-such-model-4bit")
    assert err.value.code == "model_not_found"
    assert "Modèle introuvable hors ligne : mlx:nobody/no-such-model-4bit" in err.value.message_fr
    assert time.monotonic() - t0 < 10


async def test_engine_own_load_failure_is_classified_with_log_tail(
    sup: Supervisor, tmp_path: Path
) -> None:
    """The real engine cannot load a broken model directory: it stays alive and logs
    'generation thread died'. We must fail fast with its last lines, not hang."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llama"}))
    t0 = time.monotonic()
    with pytest.raises(LegalAssistantError) as err:
        await sup.ensure_ready(f"mlx:{broken}")
    assert err.value.code in ("model_not_found", "engine_wedged")
    assert any("generation thread died" in line for line in err.value.log_tail)
    assert time.monotonic() - t0 < 15
    engine = sup.engine_for(parse_model_id(f"mlx:{broken}"))
    assert engine is not None and engine.state is EngineState.FAILED and engine.pid is None


async def test_fixed_port_busy_names_the_holder(settings: Settings) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    sup = Supervisor(settings.model_copy(update={"mlx_port": port}))
    try:
        t0 = time.monotonic()
        with pytest.raises(LegalAssistantError) as err:
            await sup.ensure_ready(BUNDLED)
        assert err.value.code == "port_busy"
        assert f"pid {os.getpid()}" in err.value.detail
        assert str(port) in err.value.message_fr
        assert time.monotonic() - t0 < 5
    finally:
        holder.close()
        await sup.shutdown()


async def test_engine_killed_while_ready_fails_then_restarts(sup: Supervisor) -> None:
    engine = await sup.ensure_ready(BUNDLED)
    pid = engine.pid
    assert pid is not None
    with sup.bus.subscribe() as sub:
        os.kill(pid, signal.SIGKILL)

        async def failed() -> EngineEvent:
            while True:
                ev = await sub.queue.get()
                if ev.new is EngineState.FAILED:
                    return ev

        ev = await asyncio.wait_for(failed(), 10)
    assert ev.error_code == "engine_crashed"
    assert engine.state is EngineState.FAILED
    again = await sup.ensure_ready(BUNDLED)
    assert again is engine and engine.pid not in (None, pid)
    assert engine.starts == 2
