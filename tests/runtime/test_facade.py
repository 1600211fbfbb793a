"""The seed's `MLXServerService` API, as a thin view over the Supervisor (fake engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime import ensure_mlx_server, get_mlx_server_service
from legal_assistant.runtime import service as service_module
from legal_assistant.runtime.supervisor import Supervisor

WAIT = 15.0
STATUS_KEYS = {"running", "model", "port", "host", "url", "state", "pid", "uptime_s", "last_error"}


@pytest.fixture
async def supervisor(fake_settings: Settings) -> AsyncIterator[Supervisor]:
    sup = Supervisor(fake_settings)
    service_module.set_supervisor(sup)
    try:
        yield sup
    finally:
        service_module.set_supervisor(None)
        await asyncio.wait_for(sup.shutdown(), WAIT)


async def test_service_start_status_reuse_stop(
    supervisor: Supervisor, fake_model: Callable[..., Path]
) -> None:
    path = fake_model("a")
    service = get_mlx_server_service()
    assert service.supervisor is supervisor
    assert get_mlx_server_service() is service

    idle = service.get_status()
    assert idle.keys() >= STATUS_KEYS
    assert idle["running"] is False and idle["pid"] is None

    engine = await asyncio.wait_for(service.start(str(path)), WAIT)  # bare id, seed style
    status = service.get_status()
    assert status.keys() >= STATUS_KEYS
    assert status["running"] is True
    assert status["state"] == "ready"
    assert status["model"] == f"mlx:{path}"
    assert engine.pid is not None and psutil.pid_exists(engine.pid)
    assert status["pid"] == engine.pid
    assert status["port"] == engine.port
    assert status["host"] == "127.0.0.1"
    assert status["url"] == f"http://127.0.0.1:{engine.port}/v1"
    assert isinstance(status["uptime_s"], float) and status["uptime_s"] >= 0
    assert status["last_error"] is None

    again = await asyncio.wait_for(ensure_mlx_server(f"mlx:{path}"), WAIT)
    assert again is engine
    assert again.pid == status["pid"]
    assert engine.starts == 1

    pid = engine.pid
    assert pid is not None
    await asyncio.wait_for(service.stop(), WAIT)
    stopped = service.get_status()
    assert stopped["running"] is False
    assert stopped["state"] == "stopped"
    assert stopped["pid"] is None and stopped["url"] is None
    assert not psutil.pid_exists(pid)


async def test_service_reports_last_error(
    supervisor: Supervisor, fake_model: Callable[..., Path]
) -> None:
    path = fake_model("broken", crash_at_start=2)
    service = get_mlx_server_service()
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(service.start(f"mlx:{path}"), WAIT)
    assert info.value.code == "engine_crashed"
    status = service.get_status()
    assert status["running"] is False
    assert status["state"] == "failed"
    assert status["last_error"]["code"] == "engine_crashed"
