"""Sampling defaults per model: read from the model's own files, overridable in settings.

A model's authors often ship the sampling it was tuned for — `generation_config.json` in an
MLX / Hugging Face directory (`temperature`, `top_p`, `repetition_penalty`), the
`general.sampling.*` keys in a GGUF (`temp`, `top_p`, `penalty_repeat`) — and engines do
not all apply them by themselves (`mlx_lm.server` does not read generation_config.json).
A chat turn sends them with each request, in the field names the engine speaks, under
what the request asks (its `temperature`) and over nothing: a model that ships nothing
gets the engine's own defaults. `[models."<id>"]` in the settings (`LEGAL_ASSISTANT_MODELS`
in the environment) overrides any of the three per model.

The bundled SmolLM2 ships no sampling defaults; measured (docs/answers.md), a repetition
penalty does not help it anyway: it turns its loop into rambling that runs to max_tokens,
which the loop watcher (chat/degeneration.py) cannot cut.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings

log = logging.getLogger("legal_assistant")


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None

    def over(self, base: Sampling) -> Sampling:
        """These values where set, `base`'s elsewhere."""
        return replace(
            base,
            **{k: v for k, v in self.as_dict().items() if v is not None},
        )

    def as_dict(self) -> dict[str, float]:
        values = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
        }
        return {k: v for k, v in values.items() if v is not None}


def turn_sampling(settings: Settings, ref: ModelRef, model_arg: str | None) -> dict[str, float]:
    """The sampling fields of a chat turn on `ref` (served from `model_arg` when managed):
    the model's files, then its settings override, in the engine's field names."""
    sampling = model_file_defaults(model_arg)
    override = settings.models.get(ref.id)
    if override is not None:
        sampling = Sampling(
            temperature=override.temperature,
            top_p=override.top_p,
            repetition_penalty=override.repetition_penalty,
        ).over(sampling)
    return request_fields(sampling, ref.provider)


def request_fields(sampling: Sampling, engine_kind: str) -> dict[str, float]:
    """The request-body fields for an OpenAI-compatible engine: llama-server calls the
    penalty `repeat_penalty`; mlx_lm.server and vLLM `repetition_penalty`."""
    fields = sampling.as_dict()
    if engine_kind == "llamacpp" and "repetition_penalty" in fields:
        fields["repeat_penalty"] = fields.pop("repetition_penalty")
    return fields


def model_file_defaults(model_arg: str | None) -> Sampling:
    """What the model's own files say (nothing for an unknown or unreadable model)."""
    if not model_arg:
        return Sampling()
    path = Path(model_arg)
    if path.is_dir():
        path = path / "generation_config.json"
    elif path.suffix != ".gguf":
        return Sampling()
    try:
        st = path.stat()
    except OSError:
        return Sampling()
    return _read_defaults(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _read_defaults(path: str, mtime_ns: int, size: int) -> Sampling:
    """Cached per file version: read once per model, not once per turn."""
    try:
        if path.endswith(".gguf"):
            with open(path, "rb") as f:
                return _from_gguf(f)
        return _from_generation_config(Path(path))
    except (OSError, ValueError, struct.error) as e:
        log.warning("Sampling defaults of %s unreadable: %s", path, e)
    return Sampling()


def _number(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if low <= value <= high else None


def _from_generation_config(path: Path) -> Sampling:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return Sampling()
    if data.get("do_sample") is False:  # greedy by its authors' choice
        return Sampling(temperature=0.0, repetition_penalty=_penalty(data))
    return Sampling(
        temperature=_number(data.get("temperature"), 0.0, 2.0),
        top_p=_number(data.get("top_p"), 0.0, 1.0),
        repetition_penalty=_penalty(data),
    )


def _penalty(data: dict[str, Any]) -> float | None:
    return _number(data.get("repetition_penalty"), 0.5, 2.0)


# --------------------------------------------------------------------------- GGUF
_GGUF_SAMPLING = {
    "general.sampling.temp": ("temperature", 0.0, 2.0),
    "general.sampling.top_p": ("top_p", 0.0, 1.0),
    "general.sampling.penalty_repeat": ("repetition_penalty", 0.5, 2.0),
}
# GGUF value types (gguf-py constants.GGUFValueType) -> struct format of a scalar.
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9
_MAX_KEYS = 100_000


def _from_gguf(f: BinaryIO) -> Sampling:
    """The `general.sampling.*` keys of a GGUF's metadata (the header only: the tensors,
    megabytes to gigabytes after it, are never read)."""
    if f.read(4) != b"GGUF":
        raise ValueError("not a GGUF file")
    (version,) = struct.unpack("<I", f.read(4))
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    _tensors, kv_count = struct.unpack("<QQ", f.read(16))
    if kv_count > _MAX_KEYS:
        raise ValueError(f"{kv_count} metadata keys")
    found: dict[str, float] = {}
    for _ in range(kv_count):
        key = _string(f)
        (kind,) = struct.unpack("<I", f.read(4))
        value = _value(f, kind)
        if key in _GGUF_SAMPLING:
            name, low, high = _GGUF_SAMPLING[key]
            number = _number(value, low, high)
            if number is not None:
                found[name] = number
    return Sampling(**found)


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", f.read(8))
    if length > 1 << 24:
        raise ValueError("metadata string too long")
    return f.read(length).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        fmt = "<" + _SCALARS[kind]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", f.read(12))
        if item_kind in _SCALARS:  # skipped whole: arrays are token tables here
            f.seek(count * struct.calcsize("<" + _SCALARS[item_kind]), os.SEEK_CUR)
        else:
            for _ in range(count):
                _value(f, item_kind)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")
