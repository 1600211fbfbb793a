"""`legal-assistant engines start | status | logs | stop` against a running backend, as a
user types them. The backend is a real `legal-assistant serve` subprocess whose MLX
command is the fake engine (tests/fakes/fake_engine.py, a stand-in of mlx_lm.server with
a start delay, so the start phases are visible)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FAKE_ENGINE = Path(__file__).resolve().parents[1] / "fakes" / "fake_engine.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGAL_ASSISTANT_")}
    env.update(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_PORT=str(port),
        LEGAL_ASSISTANT_MLX_COMMAND=json.dumps([sys.executable, str(FAKE_ENGINE)]),
        LEGAL_ASSISTANT_WARM_DEFAULT="false",  # no background warm-up of the default model
        HF_HOME=str(tmp_path / "hf"),
        COLUMNS="250",  # Rich folds long lines (model paths) at the terminal's width
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "legal_assistant.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1, trust_env=False)
            break
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "backend did not start"
            time.sleep(0.05)
    try:
        yield env, url
    finally:
        proc.terminate()
        proc.wait(30)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_engines_start_status_logs_stop(
    backend: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, url = backend
    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "fake_engine.json").write_text(json.dumps({"start_delay": 1.0}))
    model = f"mlx:{model_dir}"

    started = cli(env, "engines", "start", model)
    assert started.returncode == 0, started.stderr
    assert "✅ Serveur MLX prêt" in started.stderr
    assert f"{model}" in started.stderr and "ready: http://127.0.0.1:" in started.stderr

    status = cli(env, "engines", "status")
    assert status.returncode == 0 and "mlx-1" in status.stdout and "ready" in status.stdout

    logs = cli(env, "engines", "logs", "mlx-1", "-n", "50")
    assert logs.returncode == 0 and "Starting httpd" in logs.stdout

    again = cli(env, "engines", "start", model)  # reuse: ready at once, same engine
    assert again.returncode == 0 and "Démarrage" not in again.stderr

    stopped = cli(env, "engines", "stop")
    assert stopped.returncode == 0 and "mlx-1" in stopped.stderr
    engines = httpx.get(f"{url}/api/engines", trust_env=False).json()["engines"]
    assert [e["state"] for e in engines] == ["stopped"]


def test_engines_start_reports_a_classified_error(
    backend: tuple[dict[str, str], str],
) -> None:
    env, _ = backend
    result = cli(env, "engines", "start", "mlx:/no/such/model")
    assert result.returncode == 1
    assert "Modèle introuvable" in result.stderr and "Traceback" not in result.stderr


def test_engines_logs_of_unknown_engine(backend: tuple[dict[str, str], str]) -> None:
    env, _ = backend
    result = cli(env, "engines", "logs", "mlx-99")
    assert result.returncode == 1 and "Traceback" not in result.stderr
