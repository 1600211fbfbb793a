"""What a model can do, read from its files before any engine starts: whether it calls
tools, and its context window.

Tool calling is a property of the chat template and of the engine's parser for it:

- `llama-server --jinja` renders the GGUF's own template (`tokenizer.chat_template`) and
  parses the calls of the formats it knows; a template that never mentions `tools`
  shows the model no tool at all — so such a model cannot call tools;
- `mlx_lm.server` passes `tools` to the template, and parses calls only when its tokenizer
  wrapper found a tool parser: `tool_parser_type` in tokenizer_config.json, or one of the
  markers its `_infer_tool_parser` (mlx-lm 0.32) looks for in the template or the vocab
  (mirrored below: importing mlx-lm here would load transformers into the backend);
- vLLM is launched without `--enable-auto-tool-choice` (its parser must be chosen per
  model family): no tools;
- servers the backend does not run (`openai:`, `ollama:`) decide for themselves: unknown.

The context window: the GGUF's `<arch>.context_length` (llama-server: capped by the
per-slot `LLAMACPP_N_CTX`), config.json's `max_position_embeddings` for MLX and vLLM
(`VLLM_MAX_MODEL_LEN` when set). None when the files are not on this machine yet.
"""

from __future__ import annotations

import asyncio
import functools
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import BUNDLED_ALIAS, BundledModelError, bundled_gguf_path
from legal_assistant.runtime.snapshots import complete_snapshot

# mlx-lm 0.32's `_infer_tool_parser` template markers (any one is enough).
_MLX_TEMPLATE_MARKERS = (
    "<minimax:tool_call>",
    "<|tool_call>",
    "<start_function_call>",
    "<longcat_tool_call>",
    "<arg_key>",
    "<|tool_list_start|>",
    "<|tool_call_start|>",
    "<tool_call>\\n<function=",
    "<tool_call>\n<function=",
    "<|tool_calls_section_begin|>",
    '<function name="',
    "[TOOL_CALLS]",
    "<atem:function_calls>",
)
_MLX_VOCAB_MARKERS = ("<|tool_call_start|>",)
EMBED_CONTEXT = 512  # e5's window (runtime/engines/embed.py windows longer inputs)


@dataclass(frozen=True, slots=True)
class ModelTraits:
    tools: bool | None  # None: not known (files not here, or a server we do not run)
    context_length: int | None
    why_no_tools: str = ""  # what the refusal says when tools is False
    architecture: str | None = None  # GGUF general.architecture / config.json model_type

    def offers_tools(self, managed: bool) -> bool:
        """Worth announcing to clients (Ollama `capabilities`): known to call tools, or a
        server the backend does not run, which decides for itself."""
        return self.tools is True or (self.tools is None and not managed)


UNKNOWN = ModelTraits(None, None)


# ------------------------------------------------------------------------------ GGUF
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}  # fmt: skip


_MAX_STRING = 4 * 1024 * 1024


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, raw)[0]


def _string(f: BinaryIO) -> str:
    size = _read(f, "<Q")
    if size > _MAX_STRING:  # a damaged (or hostile) file must not allocate gigabytes
        raise ValueError("GGUF string too long")
    return f.read(size).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind == 8:
        return _string(f)
    if kind == 9:  # array: skipped unless its items are strings we want
        item, count = _read(f, "<I"), _read(f, "<Q")
        if item in (8, 9):
            for _ in range(count):
                _value(f, item)
        elif item not in _SCALARS:
            raise ValueError(f"unknown GGUF array type {item}")
        else:
            f.seek(count * struct.calcsize("<" + _SCALARS[item]), 1)
        return None
    return _read(f, "<" + _SCALARS[kind])


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The scalar and string metadata of a GGUF file (arrays such as the vocabulary are
    skipped without being decoded)."""
    out: dict[str, Any] = {}
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        _read(f, "<I")  # version
        _read(f, "<Q")  # tensor count
        for _ in range(_read(f, "<Q")):
            key, kind = _string(f), _read(f, "<I")
            if kind not in _SCALARS and kind not in (8, 9):
                raise ValueError(f"unknown GGUF value type {kind}")
            value = _value(f, kind)
            if value is not None:
                out[key] = value
    return out


# ------------------------------------------------------------------------------ templates
def template_mentions_tools(template: str) -> bool:
    """A Jinja chat template that renders the `tools` it is given."""
    return "tools" in template


def mlx_parses_tools(template: str, tokenizer_config: dict[str, Any], vocab: str) -> bool:
    if tokenizer_config.get("tool_parser_type"):
        return True
    if "<tool_call>" in template and "tool_call.name" in template:
        return True
    return any(m in template for m in _MLX_TEMPLATE_MARKERS) or any(
        m in vocab for m in _MLX_VOCAB_MARKERS
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _hf_template(directory: Path, tokenizer_config: dict[str, Any]) -> str:
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name", "template"}]
        template = "\n".join(str(t.get("template", "")) for t in template if isinstance(t, dict))
    jinja = directory / "chat_template.jinja"
    if not template and jinja.is_file():
        template = jinja.read_text(encoding="utf-8", errors="replace")
    if not template:
        template = _json(directory / "chat_template.json").get("chat_template")
    return str(template or "")


def _hf_architecture(directory: Path) -> str | None:
    kind = _json(directory / "config.json").get("model_type")
    return kind if isinstance(kind, str) and kind else None


def _hf_context(directory: Path) -> int | None:
    config = _json(directory / "config.json")
    for source in (config, config.get("text_config") or {}):
        value = source.get("max_position_embeddings") if isinstance(source, dict) else None
        if isinstance(value, int) and value > 0:
            return value
    return None


def _mlx_dir(directory: Path) -> ModelTraits:
    tokenizer_config = _json(directory / "tokenizer_config.json")
    template = _hf_template(directory, tokenizer_config)
    added = _json(directory / "tokenizer.json").get("added_tokens") or []
    vocab = " ".join(str(t.get("content", "")) for t in added if isinstance(t, dict))
    tools = mlx_parses_tools(template, tokenizer_config, vocab)
    why = "" if tools else "mlx-lm finds no tool-call format in its chat template"
    return ModelTraits(tools, _hf_context(directory), why, _hf_architecture(directory))


@functools.lru_cache(maxsize=64)
def _gguf(path: Path, mtime: float, n_ctx: int | None, engine: str) -> ModelTraits:
    meta = gguf_metadata(path)
    template = str(meta.get("tokenizer.chat_template") or "")
    arch = meta.get("general.architecture")
    trained = meta.get(f"{arch}.context_length")
    context = int(trained) if isinstance(trained, int) else None
    if n_ctx is not None:
        context = min(context, n_ctx) if context else n_ctx
    if engine == "mlx":
        tools = mlx_parses_tools(template, {}, "")
        why = "mlx-lm finds no tool-call format in its chat template"
    else:
        tools = template_mentions_tools(template)
        why = "its chat template (GGUF tokenizer.chat_template) has no tools"
    return ModelTraits(tools, context, "" if tools else why, str(arch) if arch else None)


def _gguf_traits(path: Path, n_ctx: int | None, engine: str) -> ModelTraits:
    try:
        return _gguf(path, path.stat().st_mtime, n_ctx, engine)
    except (OSError, ValueError, struct.error):
        return UNKNOWN


def model_traits(ref: ModelRef, settings: Settings) -> ModelTraits:
    """What `ref` can do, from its files (blocking: call it in a thread)."""
    try:
        return _traits(ref, settings)
    except (BundledModelError, OSError, ValueError, struct.error):
        return UNKNOWN  # unreadable files: the engine will say what is wrong


def _traits(ref: ModelRef, settings: Settings) -> ModelTraits:
    if ref.provider == "embed":
        return ModelTraits(False, EMBED_CONTEXT, "it is an embedding model", "bert")
    if ref.provider == "llamacpp":
        if ref.kind == "alias" and ref.name != BUNDLED_ALIAS:
            return UNKNOWN
        path = bundled_gguf_path() if ref.kind == "alias" else Path(ref.name)
        return _gguf_traits(path, settings.llamacpp_n_ctx, "llamacpp")
    if ref.provider not in ("mlx", "vllm"):
        return UNKNOWN
    if ref.kind == "alias":
        if ref.provider != "mlx" or ref.name != BUNDLED_ALIAS:
            return UNKNOWN
        return _gguf_traits(bundled_gguf_path(), None, "mlx")
    directory = (
        Path(ref.name)
        if ref.kind == "path"
        else complete_snapshot(ref.name, settings.resolved_hf_home)
    )
    if directory is None or not directory.is_dir():
        return UNKNOWN
    if ref.provider == "vllm":
        context = settings.vllm_max_model_len or _hf_context(directory)
        why = "vLLM runs here without a tool-call parser"
        return ModelTraits(False, context, why, _hf_architecture(directory))
    return _mlx_dir(directory)


async def require_tool_calling(ref: ModelRef, settings: Settings) -> None:
    """Refuse, at once and before anything starts, tools for a model that cannot call
    them (`bad_request`, which each protocol shows in its own error shape). A model
    whose files are not here yet (unknown) is given the benefit of the doubt."""
    traits = await asyncio.to_thread(model_traits, ref, settings)
    if traits.tools is not False:
        return
    detail = (
        f"{ref.id} cannot call tools: {traits.why_no_tools}. Send the request without "
        'tools, or choose a model that calls tools (listed with "tools": true by '
        "GET /v1/models)."
    )
    raise LegalAssistantError(
        "bad_request",
        detail,
        message_fr=f"❌ Le modèle {ref.id} ne sait pas appeler d'outils : envoyez la requête "
        "sans outils, ou choisissez un modèle qui les prend en charge.",
        message_en=f"❌ {detail}",
    )
