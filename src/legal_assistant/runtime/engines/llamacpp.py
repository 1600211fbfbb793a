"""llama.cpp's own C++ server (`llama-server`), built into the engines dir by
runtime/installer.py.

Why this server: it batches requests continuously over `--parallel N` slots (four answers
at once cost about twice one instead of four times), answers `/health` 503 until its model
is loaded, exposes `/slots` and `/metrics`, and saves/restores a slot's KV cache to disk,
which keeps a swapped-out model's prompt cache across a switch (runtime/kv_slots.py).
On Linux it decodes the bundled GGUF ~13x faster than MLX's CPU backend, with no conversion.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import psutil

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import BUNDLED_ALIAS, BundledModelError, bundled_gguf_path
from legal_assistant.runtime.engines.base import (
    EngineHandle,
    EngineSpec,
    LaunchPlan,
    Progress,
)
from legal_assistant.runtime.installer import (
    INSTALL_HINT,
    LLAMACPP_VERSION,
    llama_server_path,
)
from legal_assistant.runtime.kv_slots import SlotStore, cache_key, restore_slots, save_slots

log = logging.getLogger("legal_assistant")

# The binary exists but cannot run here (a build for another machine, missing libraries).
_NOT_INSTALLED = re.compile(r"error while loading shared libraries|cannot execute binary file")
_BIND = re.compile(r"couldn't bind HTTP server socket|exiting due to HTTP server error")
_BAD_MODEL = re.compile(
    r"failed to load model|error loading model|exiting due to model loading error"
    r"|gguf_init_from_file|invalid magic"
)
# Allocation failures that end the process (a failed *prompt cache* allocation does not).
_OOM = re.compile(
    r"failed to allocate buffer|cannot allocate memory|out of memory"
    r"|terminate called after throwing an instance of 'std::bad_alloc'"
)
# The KV cache element type (llama-server's default; part of the slot files' key).
KV_CACHE_TYPE = "f16"


def slot_count(settings: Settings) -> int:
    """Slots decoded together. Default: enough to batch what the gateway admits on a small
    machine (4 measured best on 2 cores), more on bigger ones, never more than
    MAX_INFLIGHT_PER_ENGINE (extra slots would only cost KV memory)."""
    if settings.llamacpp_parallel:
        return settings.llamacpp_parallel
    cores = psutil.cpu_count(logical=False) or 1
    return max(1, min(settings.max_inflight_per_engine, max(4, cores)))


def thread_count(settings: Settings) -> int:
    return settings.llamacpp_threads or psutil.cpu_count(logical=False) or 1


def slot_dir(settings: Settings) -> Path:
    return settings.data_dir / "kv-slots"


def slot_store(settings: Settings) -> SlotStore:
    return SlotStore(slot_dir(settings), int(settings.kv_cache_max_gb * 1024**3))


def slot_key(model_arg: str, settings: Settings) -> str:
    return cache_key(
        model_arg,
        ctx_per_slot=settings.llamacpp_n_ctx,
        cache_type=KV_CACHE_TYPE,
        version=LLAMACPP_VERSION,
    )


class LlamaCppSpec(EngineSpec):
    kind = "llamacpp"
    label = "llama.cpp"
    not_installed_pattern = _NOT_INSTALLED
    fatal_patterns = (_BIND, _BAD_MODEL, _OOM)

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

    def parallelism(self, settings: Settings) -> int:
        return slot_count(settings)

    def fixed_port(self, settings: Settings) -> int:
        return settings.llamacpp_port

    def command(self, settings: Settings) -> list[str]:
        if settings.llamacpp_command:
            return list(settings.llamacpp_command)
        return [str(llama_server_path(settings.engines_dir))]

    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan:
        slots = slot_count(settings)
        threads = thread_count(settings)
        saves = slot_store(settings).ensure()  # llama-server refuses a missing directory
        argv = [
            *self.command(settings),
            "--host", host,
            "--port", str(port),
            "-m", model_arg,
            "--parallel", str(slots),
            "--cont-batching",  # the default today; said so a default change cannot undo it
            # -c is the whole KV cache, split evenly across the slots.
            "-c", str(settings.llamacpp_n_ctx * slots),
            "--no-kv-unified",  # fixed per-slot contexts: what slot files are keyed by
            # Physical cores for decode and prompt processing alike (FIELD-NOTES.md).
            "--threads", str(threads),
            "--threads-batch", str(threads),
            "--batch-size", str(settings.llamacpp_batch_size),
            "--ubatch-size", str(min(settings.llamacpp_batch_size, 512)),
            # llama-server's in-RAM prompt cache defaults to 8 GiB: bound it.
            "--cache-ram", str(settings.llamacpp_cache_ram_mb),
            "--slot-save-path", str(saves),
            "--metrics",
            "--no-webui",
            # The GGUF's own chat template (Jinja), which is what parses tool calls. The
            # default of the pinned build, said explicitly for LLAMACPP_COMMAND builds.
            "--jinja",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, env=self.base_env(settings), served_model=model_arg)

    async def after_ready(self, handle: EngineHandle) -> None:
        """Restore the slots a previous engine for this model saved, before any request."""
        settings = handle.settings
        try:
            key = await asyncio.to_thread(slot_key, handle.model_arg, settings)
            await restore_slots(
                handle.http, handle.base_url, slot_store(settings), key, slot_count(settings)
            )
        except Exception as e:  # a cache problem must never fail a start
            _log_hook_error("restore", handle, e)

    async def before_stop(self, handle: EngineHandle, *, reason: str) -> None:
        """Save the slots worth keeping (never called for a crashed engine)."""
        settings = handle.settings
        try:
            key = await asyncio.to_thread(slot_key, handle.model_arg, settings)
            await save_slots(handle.http, handle.base_url, slot_store(settings), key)
        except Exception as e:
            _log_hook_error(f"save ({reason})", handle, e)

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
        if _BIND.search(text):
            return self.port_busy(fatal, last)
        if _OOM.search(text):
            return LegalAssistantError(
                "engine_crashed",
                "llama.cpp ran out of memory",
                message_fr="❌ llama.cpp manque de mémoire : fermez d'autres modèles, ou "
                "réduisez LLAMACPP_N_CTX / LLAMACPP_PARALLEL.",
                message_en="❌ llama.cpp ran out of memory: close other models, or lower "
                "LLAMACPP_N_CTX / LLAMACPP_PARALLEL.",
                log_tail=last,
            )
        if _BAD_MODEL.search(text):
            return LegalAssistantError(
                "model_not_found",
                "llama.cpp could not load the GGUF file",
                message_fr="❌ llama.cpp n'a pas pu charger ce fichier GGUF.",
                message_en="❌ llama.cpp could not load this GGUF file.",
                log_tail=last,
            )
        return None


def _log_hook_error(what: str, handle: EngineHandle, e: Exception) -> None:
    log.warning("kv slots %s for %s failed: %r", what, handle.engine_id, e)


def _not_found(ref: ModelRef, why: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        why,
        message_fr=f"❌ Modèle introuvable : {ref.id}. Indiquez le chemin absolu d'un fichier "
        ".gguf, ou llamacpp:smollm2-135m.",
        message_en=f"❌ Model not found: {ref.id}. Give the absolute path of a .gguf file, "
        "or llamacpp:smollm2-135m.",
    )
