"""The supervisor against the real llama.cpp server (llama-cpp-python, compiled by
`make engines` / `legal-assistant engines install llamacpp`) serving the bundled GGUF."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import bundled_gguf_path
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.installer import INSTALL_HINT, is_installed
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

MODEL = "llamacpp:smollm2-135m"


@pytest.fixture
async def sup(settings: Settings) -> AsyncIterator[Supervisor]:
    assert is_installed(settings.engines_dir, "llamacpp"), (
        f"llama.cpp engine missing: run `make engines` or `{INSTALL_HINT}`"
    )
    supervisor = Supervisor(settings)
    try:
        yield supervisor
    finally:
        await supervisor.shutdown()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def ask(engine_url: str, model: str, prompt: str, max_tokens: int = 12) -> str:
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        resp = await client.post(
            f"{engine_url}/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0.0,
            },
        )
        resp.raise_for_status()
        return str(resp.json()["choices"][0]["message"]["content"])


async def test_cold_start_answers_and_reuse(sup: Supervisor) -> None:
    events: list[EngineEvent] = []
    engine = await sup.ensure_ready(MODEL, on_event=events.append)
    assert engine.state is EngineState.READY and engine.kind == "llamacpp"
    assert engine.served_model == str(bundled_gguf_path())  # the GGUF, no conversion
    assert [e.new for e in events if e.old != e.new] == [
        EngineState.STARTING,
        EngineState.LOADING,
        EngineState.READY,
    ]
    assert engine.served_model is not None
    # Greedy chat answers of a 135M 4-bit model differ between llama.cpp's and MLX's
    # kernels; a raw completion both get right proves the weights load correctly.
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        resp = await client.post(
            f"{engine.base_url}/v1/completions",
            json={
                "model": engine.served_model,
                "prompt": "The capital of France is",
                "max_tokens": 4,
                "temperature": 0.0,
            },
        )
    assert "Paris" in resp.json()["choices"][0]["text"]
    assert await ask(engine.base_url, engine.served_model, "Say hello.", max_tokens=6)
    pid = engine.pid
    again = await sup.ensure_ready(MODEL)
    assert again.pid == pid and engine.starts == 1


async def test_switch_between_two_gguf_files_then_stop(sup: Supervisor, tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    await asyncio.to_thread(shutil.copyfile, bundled_gguf_path(), copy)
    first = await sup.ensure_ready(MODEL)
    old = first.pid
    assert old is not None
    second = await sup.ensure_ready(f"llamacpp:{copy}")
    assert second.pid not in (None, old) and gone(old)
    assert second.served_model is not None
    assert await ask(second.base_url, second.served_model, "Hello", max_tokens=3)
    pid = second.pid
    assert pid is not None
    await sup.stop(f"llamacpp:{copy}")
    assert second.state is EngineState.STOPPED and gone(pid)


async def test_mlx_and_llamacpp_run_side_by_side(sup: Supervisor) -> None:
    """Swap is per engine kind: an MLX model and a llama.cpp model can both be loaded."""
    llama = await sup.ensure_ready(MODEL)
    mlx = await sup.ensure_ready("mlx:smollm2-135m")
    assert llama.state is EngineState.READY and mlx.state is EngineState.READY
    assert llama.pid and mlx.pid and not gone(llama.pid) and not gone(mlx.pid)


async def test_fixed_port_busy_names_the_holder(settings: Settings) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    sup = Supervisor(settings.model_copy(update={"llamacpp_port": port}))
    try:
        with pytest.raises(LegalAssistantError) as err:
            await sup.ensure_ready(MODEL)
        assert err.value.code == "port_busy" and f"pid {os.getpid()}" in err.value.detail
    finally:
        holder.close()
        await sup.shutdown()


async def test_crash_then_restart(sup: Supervisor) -> None:
    engine = await sup.ensure_ready(MODEL)
    pid = engine.pid
    assert pid is not None
    failed = asyncio.Event()
    with sup.bus.subscribe() as sub:
        os.kill(pid, signal.SIGKILL)

        async def wait_failed() -> None:
            async for ev in sub:
                if ev.new is EngineState.FAILED:
                    failed.set()
                    return

        await asyncio.wait_for(wait_failed(), 10)
    assert engine.last_error is not None and engine.last_error.code == "engine_crashed"
    again = await sup.ensure_ready(MODEL)
    assert again.pid not in (None, pid) and engine.starts == 2
