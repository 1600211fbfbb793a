"""`legal-assistant serve` as a real process: one backend per data directory, and the
seed's shutdown lines on SIGTERM, with the engine it started gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api_helpers import BUNDLED, chat, free_port, hermetic_env, pid_gone

SHUTDOWN_LINES = (
    "Legal Assistant API - Shutting down...",
    "MLX server stopped",
    "SurrealDB disconnected",
    "Goodbye!",
)


@dataclass
class Backend:
    proc: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    data_dir: Path
    stderr: Path

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace")


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "legal_assistant.cli", "serve", "--port", str(port)]


@pytest.fixture(scope="module")
def backend(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, bundled_model: Path
) -> Iterator[Backend]:
    root = tmp_path_factory.mktemp("serve")
    env = hermetic_env(
        LEGAL_ASSISTANT_DATA_DIR=str(root / "data"),
        LEGAL_ASSISTANT_MODELS_DIR=str(models_dir),
        LEGAL_ASSISTANT_CONFIG_FILE=str(root / "absent.toml"),
        LEGAL_ASSISTANT_OLLAMA_URL=f"http://127.0.0.1:{free_port()}",
        HF_HOME=str(root / "hf"),
    )
    port = free_port()
    stderr = root / "serve.stderr"
    with stderr.open("wb") as err_out:
        proc = subprocess.Popen(
            serve_command(port), env=env, stdout=subprocess.DEVNULL, stderr=err_out
        )
    url = f"http://127.0.0.1:{port}"
    running = Backend(proc, url, env, root / "data", stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, running.stderr_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the backend did not answer /healthz in 60 s"
            time.sleep(0.1)
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_second_backend_on_the_same_data_dir_exits_with_a_clear_message(
    backend: Backend,
) -> None:
    second = subprocess.run(
        serve_command(free_port()), env=backend.env, capture_output=True, timeout=60
    )
    stderr = second.stderr.decode(errors="replace")
    assert second.returncode != 0
    assert "Traceback" not in stderr, stderr
    assert "❌ Un autre Legal Assistant utilise déjà ce dossier de données." in stderr
    assert str(backend.data_dir) in stderr
    assert f"pid {backend.proc.pid}" in stderr
    # The first backend did not notice.
    assert httpx.get(f"{backend.url}/healthz", trust_env=False).status_code == 200


async def test_sigterm_stops_the_engine_and_prints_the_seed_shutdown_lines(
    backend: Backend,
) -> None:
    async with httpx.AsyncClient(base_url=backend.url, timeout=120, trust_env=False) as client:
        turn = await chat(client, message="Bonjour", max_tokens=4)
        assert turn.names[-1] == "done", turn.events
        status = (await client.get("/api/settings/mlx/status")).json()
    assert status["running"] is True and status["model"] == BUNDLED
    engine_pid = status["pid"]

    t0 = time.monotonic()
    backend.proc.send_signal(signal.SIGTERM)
    code = backend.proc.wait(15)
    elapsed = time.monotonic() - t0
    stderr = backend.stderr_text()
    assert elapsed < 15
    # uvicorn re-raises the signal it handled once shut down (so a process manager sees
    # why it ended): -SIGTERM is a clean exit here, like 0.
    assert code in (0, -signal.SIGTERM), stderr
    positions = [stderr.find(line) for line in SHUTDOWN_LINES]
    assert all(p >= 0 for p in positions), stderr
    assert positions == sorted(positions), stderr
    assert pid_gone(engine_pid)
    assert "Traceback" not in stderr, stderr
