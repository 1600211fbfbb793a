"""runtime/model_traits.py: tool calling and the context window, read from a model's own
files (the bundled GGUF's metadata, Hugging Face model directories)."""

from __future__ import annotations

import json
from pathlib import Path

from legal_assistant.catalog import parse_model_id
from legal_assistant.config import Settings
from legal_assistant.runtime.bundled import bundled_gguf_path
from legal_assistant.runtime.model_traits import gguf_metadata, model_traits


def test_the_bundled_gguf_has_no_tools_and_an_8k_window(tmp_path: Path) -> None:
    meta = gguf_metadata(bundled_gguf_path())
    assert meta["general.architecture"] == "llama" and meta["llama.context_length"] == 8192
    assert "tools" not in meta["tokenizer.chat_template"]
    settings = Settings(data_dir=tmp_path, llamacpp_n_ctx=2048)
    mlx = model_traits(parse_model_id("mlx:smollm2-135m"), settings)
    assert (mlx.tools, mlx.context_length, mlx.architecture) == (False, 8192, "llama")
    llamacpp = model_traits(parse_model_id("llamacpp:smollm2-135m"), settings)
    assert (llamacpp.tools, llamacpp.context_length) == (False, 2048)  # the slot's window
    assert "tokenizer.chat_template" in llamacpp.why_no_tools


def _model(
    root: Path, name: str, tokenizer_config: dict[str, object], template_file: str = ""
) -> Path:
    path = root / name
    path.mkdir()
    config = {"model_type": "qwen2", "text_config": {"max_position_embeddings": 4096}}
    (path / "config.json").write_text(json.dumps(config))
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    if template_file:
        (path / "chat_template.jinja").write_text(template_file)
    return path


def test_mlx_directories_follow_mlx_lm_tool_parser_inference(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    qwen = _model(tmp_path, "qwen", {"chat_template": "<tool_call>{{ tool_call.name }}"})
    mistral = _model(tmp_path, "mistral", {}, "[TOOL_CALLS]")
    declared = _model(tmp_path, "declared", {"tool_parser_type": "json_tools"})
    mentions = _model(
        tmp_path, "mentions", {"chat_template": "{% if tools %}{{ tools }}{% endif %}"}
    )
    for path, tools in ((qwen, True), (mistral, True), (declared, True), (mentions, False)):
        traits = model_traits(parse_model_id(f"mlx:{path}"), settings)
        assert traits.tools is tools, path
        assert traits.context_length == 4096 and traits.architecture == "qwen2"
    vllm = model_traits(parse_model_id(f"vllm:{qwen}"), settings)
    assert vllm.tools is False and "parser" in vllm.why_no_tools


def test_unknown_when_the_files_are_not_here(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, hf_home=tmp_path / "hf")
    for model in ("mlx:org/absent", "openai:gpt", "ollama:llama3.2"):
        traits = model_traits(parse_model_id(model), settings)
        assert (traits.tools, traits.context_length) == (None, None)
    assert model_traits(parse_model_id("embed:multilingual-e5-small"), settings).tools is False


def test_damaged_files_are_unknown_not_errors(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    for name, raw in (
        ("truncated.gguf", b"GGUF\x03\x00\x00\x00"),
        ("huge.gguf", b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little")
         + (1).to_bytes(8, "little") + (2**60).to_bytes(8, "little")),
        ("notgguf.gguf", b"PK\x03\x04"),
    ):  # fmt: skip
        (tmp_path / name).write_bytes(raw)
        traits = model_traits(parse_model_id(f"llamacpp:{tmp_path / name}"), settings)
        assert (traits.tools, traits.context_length) == (None, None), name
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "chat_template.jinja").mkdir()  # unreadable as a file
    assert model_traits(parse_model_id(f"mlx:{broken}"), settings).tools in (False, None)
