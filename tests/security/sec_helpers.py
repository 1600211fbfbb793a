"""Helpers for the security tests: the real app served by uvicorn (in the test's event
loop, or in a background thread for synchronous clients such as schemathesis), hermetic
fake-engine settings, and a standard SSE parser.

Imported as `sec_helpers` (pytest puts this directory on sys.path; the basename is unique
in the tree). Copied from tests/api/api_helpers.py rather than imported, so the two suites
do not depend on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from legal_assistant.api.app import create_app
from legal_assistant.api.state import AppState
from legal_assistant.config import Settings
from legal_assistant.errors import ERROR_CODES

FAKE_ENGINE = Path(__file__).resolve().parents[1] / "fakes" / "fake_engine.py"
REQUEST_TIMEOUT = 30.0
# Codes a refusal may carry (the app's catalog: anything else is a bug).
KNOWN_CODES = ERROR_CODES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_fake_model(root: Path, name: str = "fake-a", **knobs: Any) -> Path:
    """A model directory the fake engine serves (config.json + its behaviour knobs)."""
    path = root / "fake-models" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "fake"}))
    (path / "fake_engine.json").write_text(json.dumps({"token_rate": 0, "tokens": 4, **knobs}))
    return path


def fake_engine_settings(
    root: Path, *, spawn_log: Path | None = None, **overrides: Any
) -> Settings:
    """Settings whose managed engines are the fake engine (`--spawn-log` records every
    process it starts), nothing reachable outside loopback, Ollama on a closed port."""
    hf = root / "hf"
    (hf / "hub").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(FAKE_ENGINE)]
    if spawn_log is not None:
        command += ["--spawn-log", str(spawn_log)]
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "models_dir": root / "models",
        "engines_dir": root / "engines",
        "hf_home": hf,
        "mlx_command": command,
        "llamacpp_command": command,
        "vllm_command": command,
        "load_timeout_s": 10.0,
        "drain_timeout_s": 5.0,
        "stop_grace_s": 1.0,
        "ollama_url": f"http://127.0.0.1:{free_port()}",
    }
    values.update(overrides)
    return Settings(**values)


def assert_refusal(resp: httpx.Response, *codes: str) -> dict[str, Any]:
    """A 4xx with a JSON `error` carrying a known code and a human message."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    error = resp.json()["error"]
    assert error["code"] in KNOWN_CODES, error
    if codes:
        assert error["code"] in codes, error
    message = error["message"]
    assert isinstance(message, str) and len(message) > 5, error
    assert "Traceback" not in resp.text
    return dict(error)


# ---------------------------------------------------------------------------------- SSE
def parse_sse(text: str) -> list[tuple[str, str]]:
    """(event, data) of a text/event-stream body, per the WHATWG parsing rules: lines end
    with CRLF, LF or CR; `:` starts a comment; one leading space after `field:` is
    dropped; `data` lines join with LF; a blank line dispatches (no data: no event)."""
    events: list[tuple[str, str]] = []
    event, data = "", []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data:
                events.append((event or "message", "\n".join(data)))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep:
            value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return events


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


def _server(settings: Settings, port: int) -> tuple[FastAPI, uvicorn.Server]:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return app, uvicorn.Server(config)


@contextlib.asynccontextmanager
async def serve_app(
    settings: Settings, *, headers: dict[str, str] | None = None
) -> AsyncIterator[RunningApp]:
    """Serve `create_app(settings)` with uvicorn on a free loopback port, in this event
    loop, lifespan included; stop it (and the engines it started) on exit."""
    port = free_port()
    app, server = _server(settings, port)
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
            yield RunningApp(url, app, settings, client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


@contextlib.contextmanager
def serve_app_in_thread(settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    """The same server in a background thread (its own event loop), for synchronous
    clients; yields (base URL, app)."""
    port = free_port()
    app, server = _server(settings, port)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as e:  # reported to the test below
            errors.append(e)

    thread = threading.Thread(target=run, name="sec-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert not errors, errors
        assert thread.is_alive(), "the app's lifespan startup failed"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive(), "uvicorn did not stop within 60 s"
