"""Sampling defaults per model (chat/sampling.py): read from a model's own files (a real
generation_config.json layout, GGUF headers written here in the format gguf-py writes,
the bundled GGUF), overridden in the settings, and sent with a chat turn — checked on the
request a scripted OpenAI-compatible endpoint received."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from app_harness import load_fake, make_settings, serve_app
from legal_assistant.catalog import parse_model_id
from legal_assistant.chat.sampling import (
    Sampling,
    model_file_defaults,
    request_fields,
    turn_sampling,
)
from legal_assistant.config import ModelOverride, OpenAIEndpoint
from legal_assistant.runtime.bundled import bundled_gguf_path

scripted = load_fake("scripted_endpoint")


def gguf(path: Path, kv: list[tuple[str, int, object]]) -> Path:
    """A GGUF v3 header with these (key, type, value) metadata and no tensors."""

    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for key, kind, value in kv:
        out += string(key) + struct.pack("<I", kind)
        if kind == 6:
            out += struct.pack("<f", value)
        elif kind == 8:
            assert isinstance(value, str)
            out += string(value)
        elif kind == 9:  # an array of u32, like a token-type table
            assert isinstance(value, list)
            out += struct.pack("<IQ", 4, len(value)) + struct.pack(f"<{len(value)}I", *value)
        elif kind == 4:
            out += struct.pack("<I", value)
    path.write_bytes(out + b"\0" * 64)
    return path


def test_generation_config_defaults(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert model_file_defaults(str(model)) == Sampling()  # no generation_config.json
    (model / "generation_config.json").write_text(
        json.dumps(
            {
                "bos_token_id": 1,
                "do_sample": True,
                "temperature": 0.6,
                "top_p": 0.95,
                "repetition_penalty": 1.05,
            }
        )
    )
    assert model_file_defaults(str(model)) == Sampling(0.6, 0.95, 1.05)
    (model / "generation_config.json").write_text(json.dumps({"temperature": 7, "top_p": "x"}))
    assert model_file_defaults(str(model)) == Sampling()  # out of range / not numbers
    assert model_file_defaults(str(tmp_path / "nowhere")) == Sampling()
    assert model_file_defaults(None) == Sampling()


def test_gguf_sampling_keys(tmp_path: Path) -> None:
    path = gguf(
        tmp_path / "m.gguf",
        [
            ("general.architecture", 8, "llama"),
            ("tokenizer.ggml.token_type", 9, list(range(1000))),
            ("general.sampling.temp", 6, 0.7),
            ("llama.context_length", 4, 8192),
            ("general.sampling.penalty_repeat", 6, 1.1),
        ],
    )
    found = model_file_defaults(str(path))
    assert found.top_p is None
    assert found.temperature == pytest.approx(0.7) and found.repetition_penalty == pytest.approx(
        1.1
    )
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 5) + b"\x01")
    assert model_file_defaults(str(broken)) == Sampling()


def test_the_bundled_gguf_has_no_sampling_defaults() -> None:
    assert model_file_defaults(str(bundled_gguf_path())) == Sampling()


def test_engine_field_names_and_overrides(tmp_path: Path) -> None:
    both = Sampling(temperature=0.2, repetition_penalty=1.1)
    assert request_fields(both, "llamacpp") == {"temperature": 0.2, "repeat_penalty": 1.1}
    assert request_fields(both, "mlx") == {"temperature": 0.2, "repetition_penalty": 1.1}
    model = tmp_path / "m"
    model.mkdir()
    (model / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "top_p": 0.9}))
    ref = parse_model_id(f"mlx:{model}")
    settings = make_settings(
        tmp_path, tmp_path / "models", models={ref.id: ModelOverride(top_p=0.5)}
    )
    assert turn_sampling(settings, ref, str(model)) == {"temperature": 0.6, "top_p": 0.5}


async def test_a_turn_sends_the_model_sampling_under_the_request_temperature(
    tmp_path: Path, models_dir: Path
) -> None:
    scripts = {"plain": scripted.Script("Un bail est un contrat.")}
    async with scripted.scripted_endpoint(scripts) as endpoint:
        remote = OpenAIEndpoint(name="s", base_url=endpoint.url, models=["plain"])
        override = ModelOverride(repetition_penalty=1.2, temperature=0.3)
        settings = make_settings(
            tmp_path,
            models_dir,
            openai_endpoints=[remote],
            models={"openai:plain": override},
            chat_max_tokens=300,
        )
        async with serve_app(settings) as app:
            await app.chat(message="Un bail ?", model_id="openai:plain")
            await app.chat(message="Un bail ?", model_id="openai:plain", temperature=0.9)
    first, second = endpoint.requests
    assert first["repetition_penalty"] == 1.2 and first["temperature"] == 0.3
    assert first["max_tokens"] == 300  # chat_max_tokens when the request says nothing
    assert second["temperature"] == 0.9 and second["repetition_penalty"] == 1.2
