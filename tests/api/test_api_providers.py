"""Providers the backend does not own (Ollama, configured OpenAI-compatible endpoints)
and the model catalog of GET /api/models."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_harness import (
    BUNDLED,
    closed_port,
    fake_engine_command,
    load_fake,
    make_settings,
    serve_app,
)
from legal_assistant.config import OpenAIEndpoint

pytestmark = pytest.mark.asyncio(loop_scope="module")

fake_engine = load_fake("fake_engine")
SEED_LABELS = (
    "🍎 Qwen 2.5 3B (MLX) - Recommandé Apple Silicon",
    "🍎 Llama 3.2 3B (MLX)",
    "🍎 Mistral 7B (MLX)",
)


@pytest.fixture(scope="module")
def ollama() -> Iterator[Any]:
    with load_fake("fake_ollama").FakeOllama() as server:
        yield server


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An OpenAI-compatible server we do not manage: the fake engine, started by hand."""
    port = closed_port()
    log = tmp_path_factory.mktemp("remote") / "remote.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            fake_engine_command("--model", "fake-remote", "--port", str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the fake OpenAI server did not come up"
            time.sleep(0.05)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_ollama_not_running_is_said_plainly_and_fast(
    tmp_path: Path, models_dir: Path
) -> None:
    port = closed_port()
    settings = make_settings(tmp_path, models_dir, ollama_url=f"http://127.0.0.1:{port}")
    async with serve_app(settings) as app:
        t0 = time.monotonic()
        turn = await app.chat(message="Bonjour", model_id="ollama:llama3.2")
        assert time.monotonic() - t0 < 5
        assert turn.names == ["meta", "error"], turn.events
        error = turn.one("error")
        assert error["code"] == "provider_unavailable"
        assert error["message"] == f"❌ Ollama n'est pas démarré (http://127.0.0.1:{port})"
        assert error["partial"] is False
        conv = await app.conversation(turn.conversation_id)
        assert conv["messages"][0]["role"] == "user"
        assert conv["messages"][0]["content"] == "Bonjour"
        assert (await app.mlx_status())["running"] is False  # nothing was started


async def test_openai_endpoint_streams_the_remote_answer(
    tmp_path: Path, models_dir: Path, remote: str
) -> None:
    endpoint = OpenAIEndpoint(name="lab", base_url=remote, models=["fake-remote"])
    settings = make_settings(tmp_path, models_dir, openai_endpoints=[endpoint])
    async with serve_app(settings) as app:
        turn = await app.chat(message="Bonjour", model_id="openai:fake-remote", max_tokens=8)
        assert turn.names[0] == "meta" and turn.names[-1] == "done", turn.events
        assert turn.statuses == []
        assert turn.text == fake_engine.expected_text(8)
        done = turn.one("done")
        assert done["provider"] == "openai" and done["model"] == "openai:fake-remote"
        assert done["usage"]["completion_tokens"] == 8
        conv = await app.conversation(turn.conversation_id)
        assert conv["messages"][1]["content"] == turn.text
        assert conv["messages"][1]["provider"] == "openai"

        refused = await app.chat(message="Bonjour", model_id="openai:not-configured")
        assert refused.status_code == 404, refused.body
        assert refused.body is not None
        assert refused.body["error"]["code"] == "model_not_found"
        assert "not-configured" in refused.body["error"]["message"]
        assert len(await app.get("/api/conversations")) == 1

        assert (await app.mlx_status())["running"] is False


async def test_models_catalog(tmp_path: Path, models_dir: Path, ollama: Any, remote: str) -> None:
    endpoint = OpenAIEndpoint(name="lab", base_url=remote, models=["fake-remote"])
    settings = make_settings(
        tmp_path, models_dir, ollama_url=ollama.url, openai_endpoints=[endpoint]
    )
    async with serve_app(settings) as app:
        data = await app.get("/api/models")
    assert data["default"] == BUNDLED and data["ollama_error"] is None
    models = {m["id"]: m for m in data["models"]}
    bundled = models[BUNDLED]
    assert bundled["default"] is True and bundled["available_offline"] is True
    assert bundled["provider"] == "mlx"
    assert [m["id"] for m in data["models"] if m["default"]] == [BUNDLED]
    labels = [m["label"] for m in data["models"]]
    for label in SEED_LABELS:
        assert label in labels
    qwen = models["mlx:mlx-community/Qwen2.5-3B-Instruct-4bit"]
    assert qwen["recommended"] is True
    assert qwen["available_offline"] is False  # not in this (empty) Hugging Face cache
    for name in ("llama3.2:latest", "qwen2.5:0.5b"):
        entry = models[f"ollama:{name}"]
        assert entry["provider"] == "ollama" and entry["size_bytes"] > 0
    assert models["openai:fake-remote"]["provider"] == "openai"
    assert models["openai:fake-remote"]["available_offline"] is True  # loopback endpoint


async def test_models_catalog_without_ollama(tmp_path: Path, models_dir: Path) -> None:
    port = closed_port()
    settings = make_settings(tmp_path, models_dir, ollama_url=f"http://127.0.0.1:{port}")
    async with serve_app(settings) as app:
        data = await asyncio.wait_for(app.get("/api/models"), 10)
    assert not any(m["provider"] == "ollama" for m in data["models"])
    assert data["ollama_error"] and "Ollama" in data["ollama_error"]
    assert any(m["id"] == BUNDLED for m in data["models"])
