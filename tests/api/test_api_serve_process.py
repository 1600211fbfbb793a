"""`legal-assistant serve` as a real process: one backend per data directory, and the
seed's shutdown lines on SIGTERM, with the engine it started gone."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app_harness import (
    BUNDLED,
    Backend,
    chat,
    free_port,
    hermetic_env,
    pid_gone,
    run_backend,
    serve_command,
)

SHUTDOWN_LINES = (
    "Legal Assistant API - Shutting down...",
    "MLX server stopped",
    "SurrealDB disconnected",
    "Goodbye!",
)


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
    with run_backend(env, root / "serve.stderr") as running:
        yield running


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
    assert backend.env["LEGAL_ASSISTANT_DATA_DIR"] in stderr
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
    stderr = backend.stderr()
    assert elapsed < 15
    # uvicorn re-raises the signal it handled once shut down (so a process manager sees
    # why it ended): -SIGTERM is a clean exit here, like 0.
    assert code in (0, -signal.SIGTERM), stderr
    positions = [stderr.find(line) for line in SHUTDOWN_LINES]
    assert all(p >= 0 for p in positions), stderr
    assert positions == sorted(positions), stderr
    assert pid_gone(engine_pid)
    assert "Traceback" not in stderr, stderr
