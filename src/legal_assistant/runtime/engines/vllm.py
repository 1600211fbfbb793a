"""vLLM (`vllm serve`), for teams with GPU servers: tensor/pipeline parallelism, and Ray
for several nodes. Not run in CI (no GPU here): its command line and error classification
are tested against recorded output lines, its lifecycle against the fake engine."""

from __future__ import annotations

import re
from pathlib import Path

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.base import (
    EngineSpec,
    LaunchPlan,
    Progress,
)

_OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|No available memory for the cache")
_NO_GPU = re.compile(
    r"No CUDA GPUs are available|Failed to infer device type|"
    r"RuntimeError: Found no NVIDIA driver|CUDA driver initialization failed"
)
_NOT_FOUND = re.compile(
    r"RepositoryNotFoundError|is not a local folder and is not a valid model identifier|"
    r"404 Client Error|Invalid repository ID"
)
_NOT_INSTALLED = re.compile(r"No module named '?vllm|vllm: command not found")


class VLLMSpec(EngineSpec):
    kind = "vllm"
    label = "vLLM"
    port_variable = "LEGAL_ASSISTANT_VLLM_PORT"
    not_installed_pattern = _NOT_INSTALLED
    fatal_patterns = (_OOM, _NO_GPU, _NOT_FOUND)

    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        if ref.kind == "path" and not (Path(ref.name) / "config.json").is_file():
            raise LegalAssistantError(
                "model_not_found",
                f"no model (config.json) at {ref.name}",
                message_fr=f"❌ Modèle introuvable : {ref.id}.",
                message_en=f"❌ Model not found: {ref.id}.",
            )
        return ref.name  # vLLM resolves (and downloads) Hub repos itself

    def fixed_port(self, settings: Settings) -> int:
        return settings.vllm_port

    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan:
        argv = [
            *settings.vllm_command,
            model_arg,
            "--host", host,
            "--port", str(port),
            "--tensor-parallel-size", str(settings.vllm_tensor_parallel_size),
            "--pipeline-parallel-size", str(settings.vllm_pipeline_parallel_size),
            "--gpu-memory-utilization", str(settings.vllm_gpu_memory_utilization),
        ]  # fmt: skip
        if settings.vllm_max_model_len:
            argv += ["--max-model-len", str(settings.vllm_max_model_len)]
        if settings.vllm_distributed_executor_backend:
            argv += ["--distributed-executor-backend", settings.vllm_distributed_executor_backend]
        env = self.base_env(settings)
        env.setdefault("VLLM_NO_USAGE_STATS", "1")  # no telemetry, ever
        env.setdefault("DO_NOT_TRACK", "1")
        return LaunchPlan(argv=argv, env=env, served_model=model_arg)

    def not_installed(self, detail: str) -> LegalAssistantError:
        return LegalAssistantError(
            "engine_not_installed",
            detail,
            message_fr="❌ vLLM n'est pas installé. Sur un serveur GPU : pip install vllm "
            "(ou LEGAL_ASSISTANT_VLLM_COMMAND).",
            message_en="❌ vLLM is not installed. On a GPU server: pip install vllm "
            "(or set LEGAL_ASSISTANT_VLLM_COMMAND).",
        )

    def classify_output(
        self, text: str, fatal: str | None, last: list[str]
    ) -> LegalAssistantError | None:
        if _NOT_FOUND.search(text):
            return LegalAssistantError(
                "model_not_found",
                (fatal or "")[:300],
                message_fr="❌ Modèle introuvable pour vLLM. Vérifiez l'identifiant du dépôt.",
                message_en="❌ Model not found for vLLM. Check the repository id.",
                log_tail=last,
            )
        if _OOM.search(text):
            return LegalAssistantError(
                "engine_crashed",
                "GPU out of memory",
                message_fr="❌ Mémoire GPU insuffisante pour ce modèle. Réduisez "
                "--max-model-len, augmentez --gpu-memory-utilization ou la parallélisation.",
                message_en="❌ Not enough GPU memory for this model. Lower --max-model-len, "
                "raise --gpu-memory-utilization or the parallelism.",
                log_tail=last,
            )
        if _NO_GPU.search(text):
            return LegalAssistantError(
                "engine_not_installed",
                "no GPU found",
                message_fr="❌ Aucun GPU trouvé : vLLM a besoin d'un GPU (CUDA/ROCm).",
                message_en="❌ No GPU found: vLLM needs a GPU (CUDA/ROCm).",
                log_tail=last,
            )
        return None
