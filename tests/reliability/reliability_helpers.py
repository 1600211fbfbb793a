"""Helpers for the fault-injection tests (tests/reliability/test_faults_*.py).

Imported as `reliability_helpers` (pytest puts this directory on sys.path; the basename is
unique in the tree). A few helpers are copied from tests/api/api_helpers.py on purpose, so
this suite does not depend on another directory being importable.

Everything here is real: the app served by uvicorn in the test's event loop, the backend
as a `legal-assistant serve` subprocess, engine processes found in the process table by
psutil. Waits are polls with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
# Bound for one request/turn: real engine cold starts take 5-15 s on a busy 2-core box.
TURN_TIMEOUT = 120.0

T = TypeVar("T")


# ----------------------------------------------------------------------------- basics
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie counts as gone: it holds no memory)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def pid_alive(pid: int) -> bool:
    return not pid_gone(pid)


async def poll(
    check: Callable[[], Awaitable[T] | T],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `check` (sync or async) until it returns something truthy; fail after
    `timeout` seconds with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} ({last!r})")
        await asyncio.sleep(interval)


def fake_model_dir(root: Path, name: str, **knobs: Any) -> Path:
    """A model directory the fake engine serves with these knobs (rewritable)."""
    path = root / "fake-models" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "fake"}))
    (path / "fake_engine.json").write_text(json.dumps(knobs))
    return path


def spawn_count(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


def hermetic_env(**extra: str) -> dict[str, str]:
    """Environment for a `legal-assistant` subprocess: no user config, no proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- processes
def is_engine_cmdline(cmd: list[str]) -> str | None:
    """'mlx' for an mlx_lm server, 'fake' for the fake engine, else None."""
    joined = " ".join(cmd)
    if "fake_engine.py" in joined:
        return "fake"
    if "mlx_lm" in joined and "server" in joined:
        return "mlx"
    return None


def engine_processes(
    root_pid: int | None = None, *, recursive: bool = True
) -> list[tuple[int, str, list[str]]]:
    """(pid, kind, cmdline) of the live (non-zombie) engine processes under `root_pid`
    (default: this process): its direct children only, or all its descendants."""
    found: list[tuple[int, str, list[str]]] = []
    try:
        children = psutil.Process(root_pid or os.getpid()).children(recursive=recursive)
    except psutil.Error:
        return found
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmd = child.cmdline()
        except psutil.Error:
            continue
        kind = is_engine_cmdline(cmd)
        if kind is not None:
            found.append((child.pid, kind, cmd))
    return found


def processes_with_marker(marker: str) -> list[psutil.Process]:
    """Every live process (anywhere in the table) whose command line contains `marker`
    (a unique temp path): how orphans of a dead backend are found."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class ProcessSampler:
    """Samples the engine processes under this process from a thread (independent of the
    event loop's scheduling), recording the most seen at once, per kind.

    `max_by_kind` counts engines — processes the backend spawned (its direct children);
    `max_all_by_kind` counts every descendant with an engine command line, which also
    catches an engine's own short-lived forks (a fork has its parent's command line until
    it execs) — so it is reported, not used for the residency policy."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.max_by_kind: dict[str, int] = {}
        self.max_all_by_kind: dict[str, int] = {}
        self.samples = 0
        self.worst: list[tuple[int, int, str, list[str]]] = []  # pid, ppid, kind, argv
        self._me = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            procs: list[tuple[int, int, str, list[str]]] = []
            for pid, kind, cmd in engine_processes():
                with contextlib.suppress(psutil.Error):
                    procs.append((pid, psutil.Process(pid).ppid(), kind, cmd))
            direct: dict[str, int] = {}
            every: dict[str, int] = {}
            for _, ppid, kind, _ in procs:
                every[kind] = every.get(kind, 0) + 1
                if ppid == self._me:
                    direct[kind] = direct.get(kind, 0) + 1
            for kind, n in direct.items():
                if n > self.max_by_kind.get(kind, 0):
                    self.max_by_kind[kind] = n
                    self.worst = procs
            for kind, n in every.items():
                self.max_all_by_kind[kind] = max(n, self.max_all_by_kind.get(kind, 0))
            self.samples += 1
            self._stop.wait(self.interval)

    def describe(self) -> list[tuple[int, int, str, list[str]]]:
        return [(pid, ppid, kind, cmd[-6:]) for pid, ppid, kind, cmd in self.worst]

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ----------------------------------------------------------------------------- SSE / chat
async def iter_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body; comments and pings skipped."""
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

    async def engine(self, model_id: str) -> dict[str, Any] | None:
        engines = (await self.get("/api/engines"))["engines"]
        return next((e for e in engines if e["model"] == model_id), None)

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.get(f"/api/conversations/{conversation_id}")
        return data


@contextlib.asynccontextmanager
async def serve_app(settings: Settings) -> AsyncIterator[RunningApp]:
    """Serve `create_app(settings)` with uvicorn on a free loopback port in this event
    loop, lifespan included; the lifespan shutdown on exit stops the engines."""
    app = create_app(settings)
    port = free_port()
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
            timeout=httpx.Timeout(TURN_TIMEOUT, connect=10),
            trust_env=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        ) as client:
            yield RunningApp(url, app, settings, client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def fake_app_settings(root: Path, **overrides: Any) -> Settings:
    """App settings whose MLX command is the fake engine, isolated under `root`."""
    hf = root / "hf"
    (hf / "hub").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "models_dir": root / "models",
        "hf_home": hf,
        "mlx_command": [sys.executable, str(FAKE_ENGINE)],
        "vllm_command": [sys.executable, str(FAKE_ENGINE)],
        "load_timeout_s": 10.0,
        "drain_timeout_s": 30.0,
        "stop_grace_s": 1.0,
        "ollama_url": f"http://127.0.0.1:{free_port()}",
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
    backend = Backend(proc, f"http://127.0.0.1:{port}", port, stderr_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, backend.stderr()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{backend.url}/healthz", timeout=2, trust_env=False).is_success:
                    break
            assert time.monotonic() < deadline, "the backend did not answer /healthz in 60 s"
            time.sleep(0.05)
        yield backend
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
