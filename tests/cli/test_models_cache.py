"""`legal-assistant models cache` and `models remove ID` (real subprocesses, real
conversions on disk, a real backend with a real engine for the in-use refusal).

The Hugging Face download is a stand-in: a cache entry laid out the way huggingface_hub
lays it out (blobs, snapshot symlinks), since there is no Hub to download from here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_harness import free_port, run_backend
from legal_assistant.runtime import blas
from legal_assistant.runtime.bundled import bundled_model_dir

MB = 1_000_000


@pytest.fixture
def env(tmp_path: Path, bundled_model: Path) -> dict[str, str]:
    """A models dir of its own holding the bundled conversions, and an HF cache holding
    one downloaded repo."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(bundled_model, models / bundled_model.name)
    variant = blas.choose().variant
    if variant != "4bit":
        source = bundled_model_dir(bundled_model.parent, variant)
        shutil.copytree(source, models / source.name)
    storage = tmp_path / "hf" / "hub" / "models--mlx-community--Tiny-4bit"
    (storage / "blobs").mkdir(parents=True)
    (storage / "blobs" / "aaaa").write_bytes(b"w" * 3 * MB)
    (storage / "blobs" / "bbbb").write_text('{"model_type": "llama"}')
    snap = storage / "snapshots" / "0123"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to(storage / "blobs" / "aaaa")
    (snap / "config.json").symlink_to(storage / "blobs" / "bbbb")
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text("0123")
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    out.update(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_MODELS_DIR=str(models),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_PORT=str(free_port()),
        LEGAL_ASSISTANT_WARM_DEFAULT="false",
        HF_HOME=str(tmp_path / "hf"),
    )
    return out


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def cached(env: dict[str, str]) -> list[dict[str, Any]]:
    done = cli(env, "models", "cache", "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)["models"]
    return rows


def test_cache_lists_conversions_and_downloads_with_their_size(env: dict[str, str]) -> None:
    rows = {(r["model_id"], r["what"]): r for r in cached(env)}
    four = rows[("mlx:smollm2-135m", "bundled (4bit)")]
    assert 100 * MB < four["size_bytes"] < 140 * MB
    if blas.choose().variant == "float32":
        f32 = rows[("mlx:smollm2-135m", "bundled (float32)")]
        assert 500 * MB < f32["size_bytes"] < 600 * MB
    repo = rows[("mlx-community/Tiny-4bit", "Hugging Face download")]
    # Blobs counted once: the snapshot's symlinks are not a second copy.
    assert 3 * MB <= repo["size_bytes"] < 3 * MB + 4096
    human = cli(env, "models", "cache")
    assert "mlx-community/Tiny-4bit" in human.stdout and "MB" in human.stdout


def test_remove_frees_a_download_and_the_conversions(env: dict[str, str]) -> None:
    done = cli(env, "models", "remove", "mlx:mlx-community/Tiny-4bit")
    assert done.returncode == 0, done.stderr
    assert "Removed mlx:mlx-community/Tiny-4bit (3 MB freed)" in done.stdout
    hub = Path(env["HF_HOME"]) / "hub"
    assert list(hub.iterdir()) == []  # nothing half-removed left behind

    done = cli(env, "models", "remove", "mlx:smollm2-135m")
    assert done.returncode == 0, done.stderr
    assert list(Path(env["LEGAL_ASSISTANT_MODELS_DIR"]).iterdir()) == []
    assert cached(env) == []
    # The bundled model comes back on its next use (converted again from the package).
    assert cli(env, "models", "cache").returncode == 0


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        pytest.param("mlx:nobody/absent", "is not in the cache", id="absent"),
        pytest.param("mlx:/srv/my-model", "is your own directory", id="user-path"),
        pytest.param("mlx:../../etc", "Invalid model id", id="traversal"),
        pytest.param("foo:bar", "Unknown model provider", id="provider"),
    ],
)
def test_remove_refuses_what_it_must_not_touch(
    env: dict[str, str], model_id: str, message: str
) -> None:
    before = cached(env)
    done = cli(env, "models", "remove", model_id)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert cached(env) == before


def test_remove_refuses_a_model_a_running_backend_has_loaded(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = int(env["LEGAL_ASSISTANT_PORT"])
    with run_backend(env, tmp_path / "backend.err", port=port) as backend:
        try:
            started = httpx.post(
                f"{backend.url}/api/engines/start",
                json={"model_id": "mlx:smollm2-135m"},
                timeout=180,
                trust_env=False,
            )
            assert started.status_code == 200, started.text
            engine_id = started.json()["id"]
            before = cached(env)
            done = cli(env, "models", "remove", "mlx:smollm2-135m")
            assert done.returncode == 1
            assert f"The model is loaded ({engine_id})" in done.stderr, done.stderr
            assert cached(env) == before
        finally:
            backend.proc.terminate()
            backend.proc.wait(30)
