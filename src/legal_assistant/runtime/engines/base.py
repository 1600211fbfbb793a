"""What the supervisor needs to know about one kind of inference server."""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError

# Variables an engine may need: system basics, locale, Python, Hugging Face, accelerators.
_ENV_KEEP = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TMPDIR", "TZ", "TERM",
     "SYSTEMROOT", "VIRTUAL_ENV", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
     "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH",
     "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NO_PROXY", "no_proxy", "HTTPS_PROXY",
     "https_proxy", "HTTP_PROXY", "http_proxy"}
)  # fmt: skip
_ENV_KEEP_PREFIXES = (
    "LC_", "PYTHON", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "MLX_", "METAL_", "CUDA_",
    "NVIDIA_", "ROCM_", "HIP_", "VLLM_", "RAY_", "NCCL_", "GGML_", "LLAMA_", "XDG_",
)  # fmt: skip

# progress(phase, detail, fraction) — lets a spec report work before the spawn (conversion,
# download) through the engine's event stream.
Progress = Callable[[str, str, float | None], None]


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    # What the engine calls its model: requests must carry exactly this `model` field,
    # or mlx_lm.server tries to load whatever the client named (FIELD-NOTES.md).
    served_model: str


class EngineSpec(ABC):
    kind: str
    label: str  # human name, e.g. "MLX"
    graceful_signal: int = signal.SIGTERM

    @abstractmethod
    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        """Turn a model ref into the engine's --model argument (a local path when possible).
        Raises model_not_found at once when the model cannot exist (offline, bad path)."""

    @abstractmethod
    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan: ...

    @abstractmethod
    def fatal_line(self, line: str) -> bool:
        """True when an output line means the start (or the running engine) is doomed."""

    @abstractmethod
    def classify(
        self, *, tail: Sequence[str], exit_code: int | None, fatal: str | None
    ) -> LegalAssistantError:
        """Turn the engine's last words into a classified error."""

    def fixed_port(self, settings: Settings) -> int:
        """A configured port for this kind (0 = ask the OS for a free one)."""
        return 0

    def not_installed(self, detail: str) -> LegalAssistantError:
        """The engine's command cannot run: say how to install it."""
        return LegalAssistantError("engine_not_installed", detail)

    def base_env(self, settings: Settings) -> dict[str, str]:
        """A minimal environment: what an inference server needs to run, and nothing of
        the backend's secrets (API keys, endpoint keys, database passwords)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k in _ENV_KEEP or k.startswith(_ENV_KEEP_PREFIXES)
        }
        hf_home = settings.resolved_hf_home
        # mlx_lm.server's /v1/models logs a CacheNotFound traceback and returns an empty
        # body when $HF_HOME/hub does not exist.
        (Path(hf_home) / "hub").mkdir(parents=True, exist_ok=True)
        env["HF_HOME"] = str(hf_home)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env
