"""The shared test harness: the real app served by uvicorn in the test's event loop, an SSE
reader, chat-turn collection, polls with deadlines, free ports and vanished pids, hermetic
settings and environments, the backend as a real `serve` process, and the stand-ins
(tests/fakes/*.py) loaded from their files.

Imported as `app_harness` from every test directory: `tests/` has no __init__.py, so
pytest (prepend import mode) puts it on sys.path when it imports tests/conftest.py, which
it does before any test module below it. Suite-specific helpers live beside their suite
(tests/reliability/reliability_helpers.py, tests/security/sec_helpers.py,
tests/gateway/conftest.py) and build on this module.

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
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import uvicorn
from fastapi import FastAPI

from legal_assistant.api.app import create_app
from legal_assistant.api.state import AppState
from legal_assistant.config import Settings

FAKES = Path(__file__).resolve().parent / "fakes"
FAKE_ENGINE = FAKES / "fake_engine.py"
BUNDLED = "mlx:smollm2-135m"
# Bound for one request/turn: real engine cold starts take 5-15 s on a busy 2-core box.
TURN_TIMEOUT = 120.0
# httpx's own default pool; suites that storm the app pass a bigger one.
DEFAULT_CLIENT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

T = TypeVar("T")


# ----------------------------------------------------------------------------- stand-ins
def load_fake(name: str) -> ModuleType:
    """Import tests/fakes/<name>.py by path (the fakes also run as standalone scripts, so
    they are loaded from their file, once per session, under their own name)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FAKES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def fake_engine_command(*extra: str) -> list[str]:
    """The fake engine as an engine command (`mlx_command`, `vllm_command`, ...)."""
    return [sys.executable, str(FAKE_ENGINE), *extra]


def fake_model_dir(root: Path, name: str, **knobs: Any) -> Path:
    """A model directory the fake engine serves with these knobs (rewritable)."""
    path = root / "fake-models" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "fake"}))
    (path / "fake_engine.json").write_text(json.dumps(knobs))
    return path


# ----------------------------------------------------------------------------- basics
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    return free_port()


def pid_gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie counts as gone: it holds no memory)."""
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
    # As in-process (conftest.py): no background warm-up of the default model, unless a
    # test about warming asks for it.
    env["LEGAL_ASSISTANT_WARM_DEFAULT"] = "false"
    env.update(extra)
    return env


async def poll(
    check: Callable[[], Awaitable[T] | T],
    *,
    timeout: float,
    interval: float = 0.05,
    max_interval: float | None = None,
    what: str = "condition",
) -> T:
    """Call `check` (sync or async) until it returns something truthy; fail after
    `timeout` seconds with the last value seen. With `max_interval`, the pause grows
    by half each round from `interval` up to it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} ({last!r})")
        await asyncio.sleep(interval)
        if max_interval is not None:
            interval = min(interval * 1.5, max_interval)


async def wait_until(cond: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll a synchronous condition quickly at first (10 ms, growing to 100 ms)."""
    await poll(cond, timeout=timeout, interval=0.01, max_interval=0.1, what=what or repr(cond))


async def consume_then_cancel(stream: AsyncIterator[Any], timeout: float = 5) -> None:
    """Iterate `stream` in a task and cancel that task once the first item arrived (within
    `timeout` seconds); the task must end cancelled."""
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in stream:
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), timeout=timeout)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ----------------------------------------------------------------------------- SSE / chat
async def iter_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body; comments and pings are skipped."""
    event = "message"
    data: list[str] = []
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
    body: dict[str, Any] | None = None  # JSON body of a refused request
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
    """One complete chat turn (until the stream ends), or a 4xx/5xx JSON refusal."""
    t0 = time.monotonic()
    async with (
        asyncio.timeout(timeout),
        client.stream("POST", "/api/chat/stream", json=body) as resp,
    ):
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


# ----------------------------------------------------------------------------- the app
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

    async def engines(self) -> list[dict[str, Any]]:
        engines: list[dict[str, Any]] = (await self.get("/api/engines"))["engines"]
        return engines

    async def engine(self, model_id: str) -> dict[str, Any] | None:
        return next((e for e in await self.engines() if e["model"] == model_id), None)

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.get(f"/api/conversations/{conversation_id}")
        return data


class AppStartupFailed(AssertionError):
    pass


def build_server(
    settings: Settings, port: int, *, graceful_shutdown_s: int = 10
) -> tuple[FastAPI, uvicorn.Server]:
    """`create_app(settings)` and a uvicorn server for it on a loopback port, lifespan on."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
    return app, uvicorn.Server(config)


@contextlib.asynccontextmanager
async def serve_app(
    settings: Settings,
    *,
    headers: dict[str, str] | None = None,
    request_timeout: float = TURN_TIMEOUT,
    graceful_shutdown_s: int = 10,
    limits: httpx.Limits = DEFAULT_CLIENT_LIMITS,
) -> AsyncIterator[RunningApp]:
    """Serve `create_app(settings)` with uvicorn on a free loopback port, in this event
    loop, lifespan included; stop it (the lifespan shutdown stops the engines) on exit.
    The client (default `headers`, `request_timeout`, pool `limits`) ignores proxies."""
    port = free_port()
    app, server = build_server(settings, port, graceful_shutdown_s=graceful_shutdown_s)
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
            timeout=httpx.Timeout(request_timeout, connect=10),
            trust_env=False,
            headers=headers,
            limits=limits,
        ) as client:
            yield RunningApp(url, app, settings, client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def make_settings(root: Path, models_dir: Path, **overrides: Any) -> Settings:
    """Real-engine settings isolated under `root` (like tests/conftest.py's `settings`),
    Ollama on a closed port; `overrides` replace any value (e.g. a fake engine command)."""
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


# ----------------------------------------------------------------------------- subprocess
@dataclass
class Backend:
    """`python -m legal_assistant.cli serve` as a real process."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    env: dict[str, str]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "legal_assistant.cli", "serve", "--port", str(port)]


@contextlib.contextmanager
def run_backend(
    env: dict[str, str], stderr_path: Path, *, port: int | None = None
) -> Iterator[Backend]:
    """Start `serve` and wait for /healthz (60 s bound); SIGKILL it on exit if alive."""
    port = port or free_port()
    with stderr_path.open("ab") as err_out:
        proc = subprocess.Popen(
            serve_command(port), env=env, stdout=subprocess.DEVNULL, stderr=err_out
        )
    backend = Backend(proc, f"http://127.0.0.1:{port}", port, env, stderr_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, backend.stderr()
            with contextlib.suppress(httpx.TransportError):
                resp = httpx.get(f"{backend.url}/healthz", timeout=2, trust_env=False)
                if resp.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the backend did not answer /healthz in 60 s"
            time.sleep(0.05)
        yield backend
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
