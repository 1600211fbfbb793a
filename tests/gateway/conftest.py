"""Gateway test kit: the real app served by uvicorn in the test's event loop, reached over
real HTTP by httpx and by the official `openai` client; settings for the real engine and
for the fake one; the stand-ins (fake engine module, fake Ollama) loaded from their files.

Test modules take everything from fixtures (never `from conftest import ...`: several
`conftest.py` files share that module name)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import openai
import psutil
import pytest
import uvicorn
from fastapi import FastAPI

from legal_assistant.api.app import create_app
from legal_assistant.api.state import AppState
from legal_assistant.config import Settings

FAKES = Path(__file__).resolve().parents[1] / "fakes"
FAKE_ENGINE = FAKES / "fake_engine.py"
BUNDLED = "mlx:smollm2-135m"
# Real engine cold starts take 5-15 s on a busy 2-core machine; bound requests far above.
REQUEST_TIMEOUT = 120.0

T = TypeVar("T")


def _load(name: str) -> ModuleType:
    """Import tests/fakes/<name>.py by path, under a name of our own."""
    key = f"gw_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, FAKES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def poll(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last!r})")
        await asyncio.sleep(interval)


def sse_data(raw_lines: list[str]) -> list[str]:
    """The `data:` payloads of SSE lines, in order."""
    return [ln[5:].removeprefix(" ") for ln in raw_lines if ln.startswith("data:")]


@dataclass
class Gateway:
    """A running app: its URL, its state, and clients pointed at it."""

    url: str
    app: FastAPI
    settings: Settings
    client: httpx.AsyncClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.la
        return state

    def openai(self, api_key: str = "unused", **kw: Any) -> openai.AsyncOpenAI:
        """The official client; its httpx client ignores proxy variables."""
        return openai.AsyncOpenAI(
            base_url=f"{self.url}/v1",
            api_key=api_key,
            timeout=REQUEST_TIMEOUT,
            http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
            **kw,
        )

    async def engines(self) -> list[dict[str, Any]]:
        resp = await self.client.get("/api/engines")
        assert resp.status_code == 200, resp.text
        engines: list[dict[str, Any]] = resp.json()["engines"]
        return engines

    async def engine(self, model_id: str) -> dict[str, Any] | None:
        return next((e for e in await self.engines() if e["model"] == model_id), None)

    async def metrics(self) -> str:
        resp = await self.client.get("/metrics")
        assert resp.status_code == 200, resp.text
        return resp.text

    async def stream_lines(self, body: dict[str, Any], path: str = "/v1/chat/completions") -> Any:
        """POST a streaming request; return (status, headers, every body line)."""
        async with self.client.stream("POST", path, json=body) as resp:
            lines = [ln async for ln in resp.aiter_lines()]
            return resp.status_code, resp.headers, lines

    async def wait_pid_gone(self, pid: int, timeout: float = 30.0) -> None:
        async def gone() -> bool:
            return pid_gone(pid)

        await poll(gone, timeout=timeout, what=f"pid {pid} to exit")

    poll = staticmethod(poll)
    pid_gone = staticmethod(pid_gone)
    sse_data = staticmethod(sse_data)


ServeGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@contextlib.asynccontextmanager
async def _serve(
    settings: Settings, *, headers: dict[str, str] | None = None
) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("the app's lifespan startup failed")
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=10),
            trust_env=False,
            headers=headers,
        ) as client:
            yield Gateway(url, app, settings, client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


@pytest.fixture
def serve_gateway() -> ServeGateway:
    """`async with serve_gateway(settings) as gw:` — the app on a free loopback port."""
    return _serve


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nobody listens on (e.g. an absent Ollama)."""
    return f"http://127.0.0.1:{_free_port()}"


@pytest.fixture
def gw_fake_settings(tmp_path: Path, hf_home: Path, closed_url: str) -> Callable[..., Settings]:
    """Settings whose MLX command is the fake engine; overrides as keyword arguments."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "models_dir": tmp_path / "models",
            "hf_home": hf_home,
            "mlx_command": [sys.executable, str(FAKE_ENGINE)],
            "load_timeout_s": 15.0,
            "drain_timeout_s": 60.0,
            "stop_grace_s": 2.0,
            "ollama_url": closed_url,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def gw_real_settings(
    tmp_path: Path, models_dir: Path, hf_home: Path, closed_url: str
) -> Callable[..., Settings]:
    """Real engine (mlx_lm.server) settings, isolated in a temp dir."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "models_dir": models_dir,
            "hf_home": hf_home,
            "load_timeout_s": 60.0,
            "drain_timeout_s": 60.0,
            "stop_grace_s": 3.0,
            "ollama_url": closed_url,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def fake_engine_module() -> ModuleType:
    """tests/fakes/fake_engine.py (for `expected_text(n)`)."""
    return _load("fake_engine")


@pytest.fixture
def fake_ollama() -> Iterator[Any]:
    with _load("fake_ollama").FakeOllama() as server:
        yield server
