"""Fault: ports are taken.

* The engine's fixed port (LEGAL_ASSISTANT_MLX_PORT) is held by another program: chat
  and gateway requests fail at once with `port_busy` naming the holder, nothing is
  spawned, the conversation records the failed turn; once the port is free, the next
  request starts the engine on it.
* The backend's own port is taken: `legal-assistant serve` exits with one clear line
  naming the holder and suggesting another port, before starting anything.

The engine is the fake engine (tests/fakes/fake_engine.py, a stand-in of mlx_lm.server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from reliability_helpers import engine_processes, fake_app_settings, serve_app, spawn_count

from app_harness import chat, fake_model_dir, free_port, hermetic_env, serve_command


@contextlib.contextmanager
def held_port() -> Iterator[tuple[socket.socket, int]]:
    """A loopback port another program (this test) listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock, int(sock.getsockname()[1])
    finally:
        sock.close()


async def test_fixed_engine_port_held_by_another_program(tmp_path: Path) -> None:
    spawns = tmp_path / "spawns.log"
    model = f"mlx:{fake_model_dir(tmp_path, 'a', tokens=3, spawn_log=str(spawns))}"
    with held_port() as (sock, port):
        settings = fake_app_settings(tmp_path, mlx_port=port)
        async with asyncio.timeout(60), serve_app(settings) as app:
            t0 = time.monotonic()
            turn = await chat(app.client, message="Bonjour", model_id=model, timeout=15)
            assert time.monotonic() - t0 < 3.0
            assert turn.names[0] == "meta" and turn.names[-1] == "error", turn.events
            err = turn.one("error")
            assert err["code"] == "port_busy", err
            assert f"pid {os.getpid()}" in err["message"] and str(port) in err["message"], err
            resp = await app.client.post(
                "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "x"}]},
            )
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "port_busy"
            assert f"pid {os.getpid()}" in resp.json()["error"]["message"]
            assert spawn_count(spawns) == 0 and engine_processes() == []
            conv = await app.conversation(turn.conversation_id)
            assert [(m["role"], m["error_code"]) for m in conv["messages"]] == [
                ("user", None),
                ("assistant", "port_busy"),
            ]

            sock.close()  # the other program lets the port go
            again = await chat(
                app.client,
                message="Encore",
                model_id=model,
                conversation_id=turn.conversation_id,
                timeout=15,
            )
            assert again.names[-1] == "done", again.events
            assert again.one("done")["engine_port"] == port
            assert spawn_count(spawns) == 1


def test_backend_port_held_by_another_program(tmp_path: Path) -> None:
    env = hermetic_env(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_OLLAMA_URL=f"http://127.0.0.1:{free_port()}",
    )
    with held_port() as (_, port):
        t0 = time.monotonic()
        proc = subprocess.run(serve_command(port), env=env, capture_output=True, timeout=60)
        elapsed = time.monotonic() - t0
    stderr = " ".join(proc.stderr.decode(errors="replace").split())
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert f"Le port {port} est déjà utilisé par pid {os.getpid()}" in stderr, stderr
    assert f"Port {port} is already used by pid {os.getpid()}" in stderr, stderr
    assert f"--port {port + 1}" in stderr, stderr
    assert elapsed < 30
    # Refused before anything was started: not even the data directory was created.
    assert not (tmp_path / "data").exists()
