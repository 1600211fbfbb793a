"""`legal-assistant doctor` as a user runs it (real subprocess, real engine, real backend):
exit 0 only when the default model answers; each fault is named, with its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app_harness import free_port, run_backend


@pytest.fixture
def doctor_env(tmp_path: Path, models_dir: Path, bundled_model: Path) -> dict[str, str]:
    """No user config, no proxy, a free backend port, a fresh data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_MODELS_DIR=str(models_dir),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_PORT=str(free_port()),
        LEGAL_ASSISTANT_OLLAMA_URL=f"http://127.0.0.1:{free_port()}",
        LEGAL_ASSISTANT_WARM_DEFAULT="false",
        HF_HOME=str(tmp_path / "hf"),
    )
    return env


def doctor(env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    done = subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["exit_code"] == done.returncode
    return done.returncode, {row["name"]: row for row in report["checks"]}


def failing(rows: dict[str, dict[str, Any]]) -> set[str]:
    return {name for name, row in rows.items() if row["status"] == "fail"}


def test_a_healthy_machine_exits_0_once_the_default_model_answered(
    doctor_env: dict[str, str],
) -> None:
    code, rows = doctor(doctor_env)
    assert code == 0, rows
    assert failing(rows) == set()
    assert "Paris" in rows["default model answers"]["detail"]
    assert rows["BLAS for MLX"]["status"] == "ok"
    assert "openblas" in rows["BLAS for MLX"]["detail"]
    assert "the engine runs float32" in rows["bundled model"]["detail"]
    assert rows["Ollama"]["status"] == "info"  # optional: the default model is not Ollama's
    # The answer came from a private data dir: nothing was left in the user's.
    assert not (Path(doctor_env["LEGAL_ASSISTANT_DATA_DIR"]) / "engines.json").exists()


def test_a_broken_mlx_command_is_named_and_exits_1(doctor_env: dict[str, str]) -> None:
    broken = [sys.executable, "-m", "mlx_lm_is_not_installed", "server"]
    code, rows = doctor({**doctor_env, "LEGAL_ASSISTANT_MLX_COMMAND": json.dumps(broken)})
    assert code == 1
    assert failing(rows) == {"mlx-lm", "default model answers"}
    assert "No module named mlx_lm_is_not_installed" in rows["mlx-lm"]["detail"]
    assert "LEGAL_ASSISTANT_MLX_COMMAND" in rows["mlx-lm"]["fix"]
    # The engine's own last words say why it could not answer.
    assert "No module named mlx_lm_is_not_installed" in rows["default model answers"]["detail"]


def test_a_running_backend_locks_the_data_dir_and_holds_the_port(
    doctor_env: dict[str, str], tmp_path: Path
) -> None:
    port = int(doctor_env["LEGAL_ASSISTANT_PORT"])
    with run_backend(doctor_env, tmp_path / "backend.err", port=port) as backend:
        try:
            code, rows = doctor(doctor_env)
        finally:
            backend.proc.terminate()
            backend.proc.wait(30)
    assert code == 1
    assert failing(rows) == {"data dir", "backend port"}
    assert f"pid {backend.proc.pid}" in rows["data dir"]["detail"]
    assert "locked" in rows["data dir"]["detail"]
    assert f"pid {backend.proc.pid}" in rows["backend port"]["detail"]
    assert f"--port {port + 1}" in rows["backend port"]["fix"]
    # The default model still answered (from the doctor's own engine), yet exit is 1.
    assert rows["default model answers"]["status"] == "ok"
