"""`legal-assistant ask` and `engines status` as a user runs them (real subprocesses, the
real bundled model, a temporary data directory)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cli_env(tmp_path: Path, models_dir: Path, bundled_model: Path) -> dict[str, str]:
    """No user config, no proxy, no backend at the configured port, short answers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_MODELS_DIR=str(models_dir),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_PORT=str(_closed_port()),
        LEGAL_ASSISTANT_MLX_MAX_TOKENS="24",
        HF_HOME=str(tmp_path / "hf"),
    )
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_ask_starts_the_bundled_model_and_answers(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(cli_env, "ask", "What is the capital of France?", "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout, (result.stdout, result.stderr)  # answer: stdout only
    assert "✅ MLX server ready" in result.stderr
    assert "mlx:smollm2-135m" in result.stderr  # the summary line (model, TTFT, tok/s)
    assert "Traceback" not in result.stderr
    # The engine it started did not outlive it.
    registry = tmp_path / "data" / "engines.json"
    assert registry.exists()  # it was recorded while it ran...
    entries = json.loads(registry.read_text())["engines"]
    assert entries == [], [(e, psutil.pid_exists(e["pid"])) for e in entries]  # ...and ended


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--model", "foo:bar"], "❌ Fournisseur de modèle inconnu", id="provider"),
        pytest.param(
            ["--model", "foo:bar", "--lang", "en"], "❌ Unknown model provider", id="provider-en"
        ),
        pytest.param(["--model", "mlx:../etc"], "❌ Identifiant de modèle invalide", id="path"),
    ],
)
def test_ask_with_a_bad_model_id_fails_with_the_message(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    result = run_cli(cli_env, "ask", "Bonjour", *args, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == ""


def test_ask_for_a_model_missing_offline(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "HF_HUB_OFFLINE": "1"}
    result = run_cli(env, "ask", "Bonjour", "--model", "mlx:nobody/missing-model", timeout=60)
    assert result.returncode == 1
    assert "❌ Modèle introuvable" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_engines_status_without_a_backend(cli_env: dict[str, str]) -> None:
    result = run_cli(cli_env, "engines", "status", timeout=60)
    assert result.returncode == 0, result.stderr
    port = cli_env["LEGAL_ASSISTANT_PORT"]
    assert f"No backend running at http://127.0.0.1:{port}" in result.stderr + result.stdout
