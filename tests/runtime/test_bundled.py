"""The bundled SmolLM2 GGUF converted to an MLX model: correct, atomic, reused."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from legal_assistant.runtime import bundled
from legal_assistant.runtime.bundled import bundled_gguf_path, convert_gguf, ensure_bundled_model


def test_gguf_is_found_without_importing_the_package() -> None:
    path = bundled_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_conversion_answers_paris(bundled_model: Path) -> None:
    from mlx_lm import generate, load

    config = json.loads((bundled_model / "config.json").read_text())
    assert config["quantization"]["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    model, tokenizer = load(str(bundled_model))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    answer = generate(model, tokenizer, prompt, max_tokens=20)  # greedy by default
    assert "Paris" in answer


def test_reused_after_first_conversion(models_dir: Path, bundled_model: Path) -> None:
    mtime = (bundled_model / "model.safetensors").stat().st_mtime_ns
    t0 = time.monotonic()
    again = ensure_bundled_model(models_dir)
    assert again == bundled_model
    assert (bundled_model / "model.safetensors").stat().st_mtime_ns == mtime
    assert time.monotonic() - t0 < 0.5


def test_crash_mid_conversion_leaves_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing leaves neither the target nor a temp directory behind."""

    def boom(meta: object, out: Path) -> None:
        raise RuntimeError("simulated crash while writing the tokenizer")

    monkeypatch.setattr(bundled, "_write_tokenizer", boom)
    target = tmp_path / "m" / "smollm2"
    with pytest.raises(RuntimeError):
        convert_gguf(bundled_gguf_path(), target)
    assert not target.exists()
    assert os.listdir(tmp_path / "m") == []
