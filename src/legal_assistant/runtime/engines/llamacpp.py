"""llama.cpp through llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`).

On Linux the MLX CPU backend decodes the bundled model at ~10 tok/s; llama.cpp serves the
same GGUF file at ~50–80 tok/s, with no conversion. It runs from a managed environment
(runtime/installer.py) because it compiles llama.cpp.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psutil

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import BUNDLED_ALIAS, BundledModelError, bundled_gguf_path
from legal_assistant.runtime.engines.base import (
    EngineSpec,
    LaunchPlan,
    Progress,
)
from legal_assistant.runtime.installer import INSTALL_HINT, engine_python

_NOT_INSTALLED = re.compile(r"No module named '?(llama_cpp|uvicorn|fastapi|sse_starlette)")
_BAD_MODEL = re.compile(r"Failed to load model|failed to load model|gguf_init|invalid magic")


class LlamaCppSpec(EngineSpec):
    kind = "llamacpp"
    label = "llama.cpp"
    not_installed_pattern = _NOT_INSTALLED

    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        if ref.kind == "alias":
            if ref.name != BUNDLED_ALIAS:
                raise _not_found(ref, "unknown alias")
            try:
                return str(bundled_gguf_path())  # served as is: no conversion needed
            except BundledModelError as e:
                raise _not_found(ref, str(e)) from e
        if not await asyncio.to_thread(Path(ref.name).is_file):
            raise _not_found(ref, f"no GGUF file at {ref.name}")
        return ref.name

    def fixed_port(self, settings: Settings) -> int:
        return settings.llamacpp_port

    def command(self, settings: Settings) -> list[str]:
        if settings.llamacpp_command:
            return list(settings.llamacpp_command)
        return [str(engine_python(settings.engines_dir, "llamacpp")), "-m", "llama_cpp.server"]

    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan:
        threads = settings.llamacpp_threads or psutil.cpu_count(logical=False) or 1
        argv = [
            *self.command(settings),
            "--model", model_arg,
            "--host", host,
            "--port", str(port),
            "--n_ctx", str(settings.llamacpp_n_ctx),
            # Physical cores for both decode and prompt processing: measured ~80 tok/s vs
            # 48 with the default thread count on 2 cores (FIELD-NOTES.md).
            "--n_threads", str(threads),
            "--n_threads_batch", str(threads),
        ]  # fmt: skip
        return LaunchPlan(argv=argv, env=self.base_env(settings), served_model=model_arg)

    def not_installed(self, detail: str) -> LegalAssistantError:
        return LegalAssistantError(
            "engine_not_installed",
            detail,
            message_fr="❌ Le moteur llama.cpp n'est pas installé. Installez-le avec : "
            f"{INSTALL_HINT} (compilation de quelques minutes).",
            message_en="❌ The llama.cpp engine is not installed. Install it with: "
            f"{INSTALL_HINT} (a few minutes of compilation).",
        )

    def classify_output(
        self, text: str, fatal: str | None, last: list[str]
    ) -> LegalAssistantError | None:
        if not _BAD_MODEL.search(text):
            return None
        return LegalAssistantError(
            "model_not_found",
            "llama.cpp could not load the GGUF file",
            message_fr="❌ llama.cpp n'a pas pu charger ce fichier GGUF.",
            message_en="❌ llama.cpp could not load this GGUF file.",
            log_tail=last,
        )


def _not_found(ref: ModelRef, why: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        why,
        message_fr=f"❌ Modèle introuvable : {ref.id}. Indiquez le chemin absolu d'un fichier "
        ".gguf, ou llamacpp:smollm2-135m.",
        message_en=f"❌ Model not found: {ref.id}. Give the absolute path of a .gguf file, "
        "or llamacpp:smollm2-135m.",
    )
