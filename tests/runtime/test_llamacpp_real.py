"""The supervisor against the real `llama-server` (built by `make engines` /
`legal-assistant engines install llamacpp`) serving the bundled GGUF: lifecycle, fatal
lines, and continuous batching."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import bundled_gguf_path
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.installer import INSTALL_HINT, is_installed, llama_server_path
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

MODEL = "llamacpp:smollm2-135m"


@pytest.fixture
async def sup(settings: Settings) -> AsyncIterator[Supervisor]:
    assert is_installed(settings.engines_dir, "llamacpp"), (
        f"llama-server missing: run `make engines` or `{INSTALL_HINT}`"
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
    async with httpx.AsyncClient(trust_env=False, timeout=120) as client:
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
    states = [e.new for e in events if e.old != e.new]
    assert states[-1] is EngineState.READY and EngineState.STARTING in states
    assert engine.pid is not None
    assert psutil.Process(engine.pid).name().startswith("llama-server")
    # A raw completion llama.cpp's kernels get right proves the weights load correctly.
    async with httpx.AsyncClient(trust_env=False, timeout=120) as client:
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
        health = await client.get(f"{engine.base_url}/health")
        assert health.status_code == 200
        metrics = await client.get(f"{engine.base_url}/metrics")
        assert "llamacpp:" in metrics.text  # --metrics is on
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


def test_llama_servers_own_bind_error_is_port_busy(settings: Settings) -> None:
    """The port is taken after our check (a race): llama-server's own line decides."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    spec = LlamaCppSpec()
    plan = spec.launch(str(bundled_gguf_path()), "127.0.0.1", port, settings)
    try:
        out = subprocess.run(plan.argv, env=plan.env, capture_output=True, text=True, timeout=120)
    finally:
        holder.close()
    lines = (out.stdout + out.stderr).splitlines()
    fatal = next(ln for ln in lines if spec.fatal_line(ln))
    assert out.returncode != 0
    assert spec.classify(tail=lines, exit_code=out.returncode, fatal=fatal).code == "port_busy"


async def test_a_file_that_is_not_gguf_is_model_not_found(sup: Supervisor, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a GGUF file" * 100)
    with pytest.raises(LegalAssistantError) as err:
        await sup.ensure_ready(f"llamacpp:{bad}")
    assert err.value.code == "model_not_found"
    assert "GGUF" in err.value.message("en")


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

        await asyncio.wait_for(wait_failed(), 30)
    assert engine.last_error is not None and engine.last_error.code == "engine_crashed"
    again = await sup.ensure_ready(MODEL)
    assert again.pid not in (None, pid) and engine.starts == 2


async def stream_tokens(
    client: httpx.AsyncClient, url: str, model: str, prompt: str, n: int
) -> list[float]:
    """Arrival times of each streamed token."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": n,
        "temperature": 0.0,
        "stream": True,
        "ignore_eos": True,  # llama-server: always n tokens, so every stream lasts
    }
    times: list[float] = []
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                times.append(time.monotonic())
    return times


async def test_four_concurrent_streams_interleave(sup: Supervisor) -> None:
    """Continuous batching: each of four streams receives tokens before any finishes
    (llama-cpp-python's server answered them one after the other)."""
    engine = await sup.ensure_ready(MODEL)
    assert engine.served_model is not None
    prompts = [f"Écris un poème sur le numéro {i}." for i in range(4)]
    async with httpx.AsyncClient(trust_env=False, timeout=300) as client:
        runs = await asyncio.gather(
            *(stream_tokens(client, engine.base_url, engine.served_model, p, 48) for p in prompts)
        )
    assert all(len(r) >= 40 for r in runs), [len(r) for r in runs]
    first_end = min(r[-1] for r in runs)
    assert all(r[0] < first_end for r in runs)


def test_the_binary_is_the_pinned_build(settings: Settings) -> None:
    binary = llama_server_path(settings.engines_dir)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "version" in (out.stdout + out.stderr)
