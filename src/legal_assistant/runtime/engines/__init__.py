"""One EngineSpec per kind of inference server. Adding an engine = adding one file."""

from __future__ import annotations

from legal_assistant.runtime.engines.base import EngineSpec, LaunchPlan
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec
from legal_assistant.runtime.engines.mlx import MLXSpec
from legal_assistant.runtime.engines.vllm import VLLMSpec

__all__ = ["EngineSpec", "LaunchPlan", "LlamaCppSpec", "MLXSpec", "VLLMSpec"]
