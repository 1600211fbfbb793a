"""The Ollama API under `/ollama` over real HTTP with the fake engine (a stand-in for
mlx_lm.server with a known answer and a controllable start) and the official `ollama`
client: NDJSON keep-alive lines while a cold engine starts, Ollama's final fields, both
name forms, load/unload requests, refusals, 501s, and `/api/pull` through the backend's
downloader (the Hub is unreachable here: tests/fakes/fake_hub.py stands in for it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import ollama
import pytest

from app_harness import fake_engine_command, load_fake, make_settings
from legal_assistant.config import Settings

MESSAGES = [{"role": "user", "content": "Bonjour"}]


def client(url: str) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=f"{url}/ollama", trust_env=False, timeout=120)


async def test_cold_chat_streams_keepalive_lines_then_the_answer(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    fake_engine_module: ModuleType,
) -> None:
    model = fake_model("cold", start_delay=2.5, tokens=6)
    model_id = f"mlx:{model}"
    expected = fake_engine_module.expected_text(6)
    async with serve_gateway(gw_fake_settings()) as gw:
        body = {"model": model_id, "messages": MESSAGES}  # no "stream": Ollama streams
        async with gw.client.stream("POST", "/ollama/api/chat", json=body) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(ln) async for ln in resp.aiter_lines() if ln]
        first_text = next(i for i, ln in enumerate(lines) if ln["message"]["content"])
        waiting = lines[:first_text]
        assert waiting, "no keep-alive line while the engine started"
        for ln in waiting:  # harmless: empty assistant content, not done
            assert ln["message"] == {"role": "assistant", "content": ""} and ln["done"] is False
        assert "".join(ln["message"]["content"] for ln in lines) == expected
        final = lines[-1]
        assert final["done"] is True and final["done_reason"] == "stop"
        assert final["model"] == model_id
        assert final["eval_count"] == 6 and final["prompt_eval_count"] == 1
        assert final["load_duration"] >= 2_000_000_000  # waited for the 2.5 s start
        assert final["total_duration"] >= final["load_duration"] + final["eval_duration"]

        # Warm, with the client: no empty line before the first token.
        oc = client(gw.url)
        parts = [p async for p in await oc.chat(model=model_id, messages=MESSAGES, stream=True)]
        assert parts[0].message.content and parts[-1].done
        assert "".join(p.message.content or "" for p in parts) == expected

        # Plain, and with options mapped to the engine (num_predict → max_tokens).
        reply = await oc.chat(model=model_id, messages=MESSAGES, options={"num_predict": 3})
        assert reply.message.content == fake_engine_module.expected_text(3)
        assert reply.done_reason == "length" and reply.eval_count == 3

        gen = await oc.generate(model=model_id, prompt="Bonjour", system="Tu es juriste.")
        assert gen.response == expected and gen.done and gen.prompt_eval_count == 4
        raw = [
            p async for p in await oc.generate(model=model_id, prompt="Le", raw=True, stream=True)
        ]
        assert "".join(p.response or "" for p in raw) == expected
        metrics = await gw.metrics()
        assert 'route="ollama/chat",status="200"' in metrics


async def test_names_listing_load_unload_and_refusals(
    serve_gateway: Callable[..., Any],
    tmp_path: Path,
    models_dir: Path,
    bundled_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The bundled alias, served by the fake engine (its default 16-token answer).
    settings = make_settings(tmp_path, models_dir, mlx_command=fake_engine_command())
    async with serve_gateway(settings) as gw:
        oc = client(gw.url)
        assert (await oc.ps()).models == []
        listed = {m.model: m for m in (await oc.list()).models}
        assert "smollm2-135m:mlx" in listed and "smollm2-135m:llamacpp" in listed, list(listed)
        assert "multilingual-e5-small:embed" in listed, list(listed)
        assert listed["smollm2-135m:mlx"].details.parameter_size == "135M"  # type: ignore[union-attr]
        # Not downloaded: not listed (Ollama's list is what is on this machine).
        assert not any("Qwen2.5-3B" in name for name in listed)

        # Load request (no prompt), then each name form reaches the same engine.
        loaded = await oc.generate(model="smollm2-135m:mlx")
        assert loaded.done and loaded.done_reason == "load"
        engine = await gw.engine("mlx:smollm2-135m")
        assert engine is not None and engine["state"] == "ready"
        for name in ("smollm2-135m:mlx", "mlx:smollm2-135m", "smollm2-135m", "smollm2-135m:latest"):
            reply = await oc.chat(model=name, messages=MESSAGES)
            assert reply.message.content and reply.model == name
        assert (await gw.engine("mlx:smollm2-135m"))["starts"] == 1  # type: ignore[index]

        running = (await oc.ps()).models
        assert [m.model for m in running] == ["smollm2-135m:mlx"]
        assert running[0].size and running[0].expires_at is not None
        shown = await oc.show("smollm2-135m:mlx")
        assert shown.capabilities == ["completion"] and "mlx:smollm2-135m" in (
            shown.modelfile or ""
        )
        assert (await oc.show("llamacpp:smollm2-135m")).details.format == "gguf"  # type: ignore[union-attr]
        version = await gw.get("/ollama/api/version")
        assert version["version"].count(".") == 2
        assert (await gw.client.get("/ollama/")).text == "Ollama is running"

        # Unload request: keep_alive 0 without a prompt stops the engine.
        unloaded = await oc.generate(model="smollm2-135m:mlx", keep_alive=0)
        assert unloaded.done_reason == "unload"
        await gw.wait_pid_gone(engine["pid"])
        assert (await oc.ps()).models == []

        # Refusals, in Ollama's shape (the client raises ResponseError with status).
        with pytest.raises(ollama.ResponseError) as missing:
            await oc.chat(model="nothing-here", messages=MESSAGES)
        assert missing.value.status_code == 404 and "not found" in missing.value.error
        with pytest.raises(ollama.ResponseError) as img:
            await oc.chat(
                model="smollm2-135m:mlx",
                messages=[{"role": "user", "content": "x", "images": ["aGk="]}],
            )
        assert img.value.status_code == 400 and "images" in img.value.error
        with pytest.raises(ollama.ResponseError) as fmt:
            await oc.chat(model="smollm2-135m:mlx", messages=MESSAGES, format="json")
        assert fmt.value.status_code == 400 and "format" in fmt.value.error
        with pytest.raises(ollama.ResponseError) as bad_ttl:
            await oc.chat(model="smollm2-135m:mlx", messages=MESSAGES, keep_alive="soon")
        assert bad_ttl.value.status_code == 400 and "keep_alive" in bad_ttl.value.error
        with pytest.raises(ollama.ResponseError) as wrong_kind:
            await oc.chat(model="multilingual-e5-small:embed", messages=MESSAGES)
        assert wrong_kind.value.status_code == 400 and "/api/embed" in wrong_kind.value.error
        with pytest.raises(ollama.ResponseError) as wrong_kind:
            await oc.embed(model="smollm2-135m:mlx", input="x")
        assert wrong_kind.value.status_code == 400 and "embedding" in wrong_kind.value.error
        for call in (oc.delete("smollm2-135m:mlx"), oc.create(model="x", from_="y")):
            with pytest.raises(ollama.ResponseError) as refused:
                await call
            assert refused.value.status_code == 501
        # No engine was started by any refusal.
        assert all(e["pid"] is None for e in await gw.engines())


async def test_pull_downloads_through_the_backend_with_progress_lines(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    bundled_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {p.name: p.read_bytes() for p in bundled_model.iterdir() if p.is_file()}
    repo = "test-org/smollm2-135m-mlx"
    with load_fake("fake_hub").FakeHub({repo: files}) as hub:
        hub.throttle_bytes_per_s = 60 * 1024 * 1024  # long enough for several progress lines
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        async with serve_gateway(gw_fake_settings()) as gw:
            oc = client(gw.url)
            name = f"{repo}:mlx"
            assert name not in {m.model for m in (await oc.list()).models}
            lines = [p async for p in await oc.pull(name, stream=True)]
            statuses = [p.status for p in lines]
            assert statuses[0] == "pulling manifest" and statuses[-1] == "success", statuses
            progress = [p for p in lines if p.total]
            assert len(progress) >= 2, statuses
            done = [p.completed or 0 for p in progress]
            assert done == sorted(done) and done[-1] == progress[-1].total
            assert progress[-1].total == sum(len(b) for b in files.values())
            # Downloaded: listed now, and a second pull needs no network.
            assert name in {m.model for m in (await oc.list()).models}
            hub.requests.clear()
            assert (await oc.pull(name)).status == "success"
            assert hub.requests == []
            # Unknown repo: Ollama's error shape, in the stream.
            with pytest.raises(ollama.ResponseError) as missing:
                async for _ in await oc.pull("test-org/nothing:mlx", stream=True):
                    pass
            assert "not found" in missing.value.error.lower()
            assert all(e["pid"] is None for e in await gw.engines())
