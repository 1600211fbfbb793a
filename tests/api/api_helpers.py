"""Helpers for the API tests: the real app served by uvicorn in the test's event loop,
a small SSE reader, chat-turn collection, polling with deadlines, and the stand-ins
(fake engine, fake Ollama) loaded from their files.

Imported as `api_helpers` (pytest puts this directory on sys.path; the basename is
unique in the tree, unlike `conftest`, which several directories define).

Why a real uvicorn server rather than `httpx.ASGITransport`: the transport does not run
the lifespan (so no database, no supervisor), and it buffers streamed bodies, which
would hide exactly what these tests look at (events as they arrive, client
disconnects)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import psutil
import uvicorn
from fastapi import FastAPI

from legal_assistant.api.app import create_app
from legal_assistant.api.state import AppState
from legal_assistant.config import Settings

FAKES = Path(__file__).resolve().parents[1] / "fakes"
FAKE_ENGINE = FAKES / "fake_engine.py"
BUNDLED = "mlx:smollm2-135m"
# Engine cold starts take 5-15 s on a busy 2-core machine; a turn is bounded well above.
TURN_TIMEOUT = 120.0

T = TypeVar("T")


def load_fake(name: str) -> ModuleType:
    """Import tests/fakes/<name>.py by path (the tests directory is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FAKES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    return free_port()


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def hermetic_env(**extra: str) -> dict[str, str]:
    """Environment for a `legal-assistant` subprocess: no user config, no proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(extra)
    return env


async def poll(
    check: Callable[[], Awaitable[T] | T],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call `check` (sync or async) until it returns something truthy, or fail after
    `timeout` seconds with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last!r})")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------------- SSE
async def iter_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body; comments and pings are skipped."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, json.loads("\n".join(data))


@dataclass
class Turn:
    """Everything one POST /api/chat/stream produced."""

    status_code: int
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    body: dict[str, Any] | None = None  # JSON body of a refused (4xx) request
    elapsed_s: float = 0.0

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def all(self, name: str) -> list[dict[str, Any]]:
        return [data for ev, data in self.events if ev == name]

    def one(self, name: str) -> dict[str, Any]:
        found = self.all(name)
        assert len(found) == 1, f"expected one {name!r} event, got {self.names}"
        return found[0]

    @property
    def statuses(self) -> list[dict[str, Any]]:
        return self.all("status")

    @property
    def text(self) -> str:
        return "".join(d["content"] for d in self.all("token"))

    @property
    def conversation_id(self) -> str:
        return str(self.one("meta")["conversation_id"])


async def chat(client: httpx.AsyncClient, timeout: float = TURN_TIMEOUT, **body: Any) -> Turn:
    """One complete chat turn (until `done` / `error`, or a 4xx JSON refusal)."""
    t0 = time.monotonic()
    async with asyncio.timeout(timeout):
        async with client.stream("POST", "/api/chat/stream", json=body) as resp:
            turn = Turn(resp.status_code)
            if resp.status_code >= 400:
                await resp.aread()
                turn.body = resp.json()
            else:
                assert resp.headers["content-type"].startswith("text/event-stream")
                async for item in iter_events(resp):
                    turn.events.append(item)
    turn.elapsed_s = time.monotonic() - t0
    return turn


# ---------------------------------------------------------------------------------- app
@dataclass
class RunningApp:
    url: str
    app: FastAPI
    settings: Settings
    client: httpx.AsyncClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.la
        return state

    async def chat(self, **body: Any) -> Turn:
        return await chat(self.client, **body)

    async def get(self, path: str, **kw: Any) -> Any:
        resp = await self.client.get(path, **kw)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def mlx_status(self) -> dict[str, Any]:
        data: dict[str, Any] = await self.get("/api/settings/mlx/status")
        return data

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.get(f"/api/conversations/{conversation_id}")
        return data


class AppStartupFailed(Exception):
    pass


@contextlib.asynccontextmanager
async def serve_app(
    settings: Settings, *, headers: dict[str, str] | None = None
) -> AsyncIterator[RunningApp]:
    """Serve `create_app(settings)` with uvicorn on a free loopback port, in this event
    loop, lifespan included; stop it (the lifespan shutdown stops the engines) on exit."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()
            raise AppStartupFailed("the app's lifespan startup failed")
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(TURN_TIMEOUT, connect=10),
            trust_env=False,
            headers=headers,
        ) as client:
            yield RunningApp(url, app, settings, client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def make_settings(root: Path, models_dir: Path, **overrides: Any) -> Settings:
    """Real-engine settings isolated under `root` (like tests/conftest.py's `settings`)."""
    hf = root / "hf"
    (hf / "hub").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "models_dir": models_dir,
        "hf_home": hf,
        "load_timeout_s": 60.0,
        "drain_timeout_s": 30.0,
        "stop_grace_s": 3.0,
        "ollama_url": f"http://127.0.0.1:{closed_port()}",
    }
    values.update(overrides)
    return Settings(**values)
