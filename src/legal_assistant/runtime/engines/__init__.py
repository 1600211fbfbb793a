"""One EngineSpec per kind of inference server. Adding an engine = adding one file and one
line in `default_specs`."""

from __future__ import annotations

from legal_assistant.runtime.engines.base import EngineHandle, EngineSpec, LaunchPlan
from legal_assistant.runtime.engines.embed import EmbedSpec
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec
from legal_assistant.runtime.engines.mlx import MLXSpec
from legal_assistant.runtime.engines.vllm import VLLMSpec


def default_specs() -> dict[str, EngineSpec]:
    """The engine kinds the supervisor manages, by provider prefix."""
    return {
        "mlx": MLXSpec(),
        "llamacpp": LlamaCppSpec(),
        "vllm": VLLMSpec(),
        "embed": EmbedSpec(),
    }


__all__ = [
    "EmbedSpec",
    "EngineHandle",
    "EngineSpec",
    "LaunchPlan",
    "LlamaCppSpec",
    "MLXSpec",
    "VLLMSpec",
    "default_specs",
]
