"""Fault: a hostile client that sends its request and then never reads the answer.

A raw socket (tiny receive buffer) POSTs a streamed request for a very long answer and
never calls recv(): every buffer on the way fills up (the client's socket, the backend's
socket and its HTTP layer, the backend↔engine connection) until the engine's writes
block. Meanwhile:

* other clients — on the same model and engine, through the chat API and the gateway —
  are served in full and in bounded time, and the backend answers /healthz;
* when the hostile client closes its socket, its request is cancelled upstream: the
  engine's in-flight count and the admission slots return to zero, and the engine logs
  that its client went away (it stopped generating for nobody).

On the fake engine (tests/fakes/fake_engine.py, a stand-in of mlx_lm.server), whose
`tokens` knob makes an answer long enough to fill every buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import termios
import time
from collections.abc import Iterator
from fcntl import ioctl
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import fake_app_settings, serve_app

from app_harness import RunningApp, chat, fake_model_dir, poll

HUGE = 3_000_000  # tokens: tens of MB of SSE, far more than all buffers on the way


@contextlib.contextmanager
def hostile_post(port: int, path: str, body: dict[str, Any]) -> Iterator[socket.socket]:
    """Send the request, never read; on exit close abruptly (RST, unread data)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    try:
        sock.connect(("127.0.0.1", port))
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(head.encode() + payload)
        yield sock
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def unread_bytes(sock: socket.socket) -> int:
    buf = ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


async def wait_blocked(app: RunningApp, model: str, sock: socket.socket) -> None:
    """Until the hostile request holds the engine and its receive buffer stopped filling
    (i.e. everything upstream is backed up)."""

    async def holding() -> bool:
        engine = await app.engine(model)
        return engine is not None and engine["inflight"] == 1

    await poll(holding, timeout=15, what="the hostile request to reach the engine")
    seen: list[int] = []

    def stalled() -> bool:
        seen.append(unread_bytes(sock))
        return len(seen) >= 5 and seen[-1] > 0 and len(set(seen[-5:])) == 1

    await poll(stalled, timeout=20, interval=0.1, what="the hostile client's buffer to fill")


async def others_are_served(app: RunningApp, model: str) -> float:
    t0 = time.monotonic()

    async def via_chat() -> None:
        turn = await chat(app.client, message="Bonjour", model_id=model, max_tokens=5, timeout=15)
        assert turn.names[-1] == "done", turn.events
        assert len(turn.all("token")) == 5

    async def via_gateway() -> None:
        resp = await app.client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["usage"]["completion_tokens"] == 5

    health = await app.client.get("/healthz")
    assert health.status_code == 200
    await asyncio.gather(*(via_chat() for _ in range(3)), *(via_gateway() for _ in range(3)))
    return time.monotonic() - t0


@pytest.mark.parametrize("route", ["chat", "gateway"])
async def test_client_that_never_reads(tmp_path: Path, route: str) -> None:
    model = f"mlx:{fake_model_dir(tmp_path, 'long', tokens=HUGE, token_rate=0, varied=True)}"
    settings = fake_app_settings(tmp_path, mlx_max_tokens=HUGE, chat_max_tokens=HUGE)
    async with asyncio.timeout(90), serve_app(settings) as app:
        port = int(app.url.rsplit(":", 1)[1])
        if route == "chat":
            path, body = "/api/chat/stream", {"message": "Tout le code civil", "model_id": model}
        else:
            path = "/v1/chat/completions"
            body = {
                "model": model,
                "messages": [{"role": "user", "content": "Tout le code civil"}],
                "max_tokens": HUGE,
                "stream": True,
            }
        with hostile_post(port, path, body) as sock:
            await wait_blocked(app, model, sock)
            elapsed = await others_are_served(app, model)
            assert elapsed < 10, f"other clients waited {elapsed:.1f}s behind a stuck one"
            engine = await app.engine(model)
            assert engine is not None and engine["inflight"] == 1  # still held, still stuck
        # Closed with unread data: the backend must notice and cancel upstream.
        t0 = time.monotonic()

        async def released() -> bool:
            engine = await app.engine(model)
            return engine is not None and engine["inflight"] == 0

        await poll(released, timeout=15, what="the hostile request to be cancelled upstream")
        assert time.monotonic() - t0 < 15
        assert app.state.admission.load(model) == (0, 0)

        async def engine_saw_it() -> bool:
            engine = await app.engine(model)
            assert engine is not None
            logs = await app.get(f"/api/engines/{engine['id']}/logs", params={"tail": 50})
            return any("Client disconnected" in line for line in logs["lines"])

        await poll(engine_saw_it, timeout=15, what="the engine to stop generating")
        engine = await app.engine(model)
        assert engine is not None and engine["state"] == "ready" and engine["starts"] == 1
        # And the engine still serves.
        assert await others_are_served(app, model) < 10


@pytest.mark.parametrize("route", ["chat", "gateway"])
async def test_client_that_stops_reading_cannot_hold_up_a_switch(
    tmp_path: Path, route: str
) -> None:
    """The hostile client stays connected and never reads. Another user asks for another
    model of the same kind, which needs the stuck engine drained: the stalled stream is
    dropped after the send timeout (1 s here), its lease released, and the switch happens
    — instead of waiting the whole drain timeout and failing with `switch_timeout`."""
    a = f"mlx:{fake_model_dir(tmp_path, 'long', tokens=HUGE, token_rate=0, varied=True)}"
    b = f"mlx:{fake_model_dir(tmp_path, 'quick', tokens=3)}"
    settings = fake_app_settings(
        tmp_path,
        mlx_max_tokens=HUGE,
        chat_max_tokens=HUGE,
        stream_send_timeout_s=1.0,
        drain_timeout_s=30.0,
    )
    async with asyncio.timeout(90), serve_app(settings) as app:
        port = int(app.url.rsplit(":", 1)[1])
        if route == "chat":
            path, body = "/api/chat/stream", {"message": "Tout le code civil", "model_id": a}
        else:
            path = "/v1/chat/completions"
            body = {"model": a, "messages": [{"role": "user", "content": "x"}], "stream": True}
            body["max_tokens"] = HUGE
        with hostile_post(port, path, body) as sock:
            await wait_blocked(app, a, sock)
            t0 = time.monotonic()
            turn = await chat(app.client, message="Bonjour", model_id=b, timeout=40)
            elapsed = time.monotonic() - t0
            assert turn.names[-1] == "done", turn.events
            assert elapsed < 10, f"the switch waited {elapsed:.1f}s behind a stalled client"
            old = await app.engine(a)
            assert old is not None and old["state"] == "stopped" and old["inflight"] == 0
            assert app.state.admission.load(a) == (0, 0)
