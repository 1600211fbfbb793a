"""Helpers specific to the security tests: hermetic fake-engine settings, refusal checks,
a standard (WHATWG) SSE parser, and the app served by tests/app_harness.py's server, in
the test's event loop or in a background thread for synchronous clients (schemathesis).

Imported as `sec_helpers` (pytest puts this directory on sys.path; the basename is unique
in the tree).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

import app_harness
from app_harness import (
    RunningApp,
    build_server,
    fake_engine_command,
    fake_model_dir,
    free_port,
    make_settings,
)
from legal_assistant.config import Settings
from legal_assistant.errors import ERROR_CODES

REQUEST_TIMEOUT = 30.0
GRACEFUL_SHUTDOWN_S = 5
# Codes a refusal may carry (the app's catalog: anything else is a bug).
KNOWN_CODES = ERROR_CODES


def make_fake_model(root: Path, name: str = "fake-a", **knobs: Any) -> Path:
    """A model directory the fake engine serves (config.json + its behaviour knobs)."""
    return fake_model_dir(root, name, **{"token_rate": 0, "tokens": 4, **knobs})


def fake_engine_settings(
    root: Path, *, spawn_log: Path | None = None, **overrides: Any
) -> Settings:
    """Settings whose managed engines are the fake engine (`--spawn-log` records every
    process it starts), nothing reachable outside loopback, Ollama on a closed port."""
    command = fake_engine_command()
    if spawn_log is not None:
        command += ["--spawn-log", str(spawn_log)]
    values: dict[str, Any] = {
        "engines_dir": root / "engines",
        "mlx_command": command,
        "llamacpp_command": command,
        "vllm_command": command,
        "load_timeout_s": 10.0,
        "drain_timeout_s": 5.0,
        "stop_grace_s": 1.0,
    }
    values.update(overrides)
    return make_settings(root, root / "models", **values)


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
    event = ""
    data: list[str] = []
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
def serve_app(
    settings: Settings, *, headers: dict[str, str] | None = None
) -> contextlib.AbstractAsyncContextManager[RunningApp]:
    """`app_harness.serve_app` with this suite's shorter request and shutdown bounds."""
    return app_harness.serve_app(
        settings,
        headers=headers,
        request_timeout=REQUEST_TIMEOUT,
        graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
    )


@contextlib.contextmanager
def serve_app_in_thread(settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    """The same server in a background thread (its own event loop), for synchronous
    clients; yields (base URL, app)."""
    port = free_port()
    app, server = build_server(settings, port, graceful_shutdown_s=GRACEFUL_SHUTDOWN_S)
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
