"""Apple's `mlx_lm.server` (Metal on a Mac, `mlx[cpu]` on Linux)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import psutil

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime import blas
from legal_assistant.runtime.bundled import (
    BUNDLED_ALIAS,
    BundledModelError,
    ensure_bundled_model,
    is_converted,
)
from legal_assistant.runtime.downloads import DownloadProgress, download_snapshot
from legal_assistant.runtime.engines.base import (
    EngineSpec,
    LaunchPlan,
    Progress,
)

# mlx-lm or mlx itself missing — not `No module named 'mlx_lm.models.X'`, which is mlx-lm
# saying it does not know that model architecture (see _UNSUPPORTED).
_NOT_INSTALLED = re.compile(r"No module named '?(?:mlx_lm|mlx)(?![\w.])")
_UNSUPPORTED = re.compile(
    r"No module named '?mlx_lm\.models\.(\w+)|Model type (\w+) not supported", re.IGNORECASE
)
_MODEL_MISSING = re.compile(
    r"RepositoryNotFound|LocalEntryNotFound|Cannot find an appropriate cached snapshot|"
    r"OfflineModeIsEnabled|HFValidationError|Repo id must|does not appear to have|"
    r"No such file or directory|not found|404 Client Error|config\.json",
    re.IGNORECASE,
)


def batch_size(settings: Settings) -> int:
    """Answers one MLX engine decodes together. Default: max(4, physical cores), like
    llama.cpp's slots (four at once cost ~1.5x one on 2 cores), never more than
    MAX_INFLIGHT_PER_ENGINE. mlx_lm.server batches only requests without a `seed`, and
    not at all with --kv-bits or a draft model (neither is used here)."""
    if settings.mlx_parallel:
        return settings.mlx_parallel
    cores = psutil.cpu_count(logical=False) or 1
    return max(1, min(settings.max_inflight_per_engine, max(4, cores)))


class MLXSpec(EngineSpec):
    kind = "mlx"
    label = "MLX"
    port_variable = "LEGAL_ASSISTANT_MLX_PORT"
    not_installed_pattern = _NOT_INSTALLED
    fatal_patterns = (re.compile("generation thread died"),)

    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        if ref.kind == "alias":
            if ref.name != BUNDLED_ALIAS:
                raise _not_found(ref, "unknown alias")
            # float32 when a fast BLAS will be preloaded (see launch), else 4-bit.
            choice = await asyncio.to_thread(blas.choose, settings.mlx_blas)
            if not is_converted(settings.models_dir, choice.variant):
                progress(
                    "preparing",
                    f"converting the bundled model ({choice.variant}, first use)",
                    None,
                )
            try:
                path = await asyncio.to_thread(
                    ensure_bundled_model, settings.models_dir, choice.variant
                )
            except BundledModelError as e:
                raise _not_found(ref, str(e)) from e
            return str(path)
        if ref.kind == "path":
            if not (Path(ref.name) / "config.json").is_file():
                raise _not_found(ref, f"no MLX model (config.json) at {ref.name}")
            return ref.name

        # org/repo: a complete local snapshot is used as is (no network); otherwise the
        # backend downloads it itself, with progress and a stall (not total) deadline, so
        # the engine never downloads behind a load timeout. Offline → fails at once.
        def on_progress(p: DownloadProgress) -> None:
            parts = [f"{p.done_bytes / 1e6:.0f}/{(p.total_bytes or 0) / 1e6:.0f} MB"]
            if p.rate_bps:
                parts.append(f"{p.rate_bps / 1e6:.1f} MB/s")
            if p.eta_s is not None:
                parts.append(f"ETA {p.eta_s:.0f}s")
            progress("downloading", " · ".join(parts), p.fraction)

        path = await download_snapshot(
            ref.name,
            hf_home=settings.resolved_hf_home,
            progress=on_progress,
            stall_timeout_s=settings.download_stall_timeout_s,
        )
        return str(path)

    def parallelism(self, settings: Settings) -> int:
        return batch_size(settings)

    def fixed_port(self, settings: Settings) -> int:
        return settings.mlx_port

    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan:
        batch = batch_size(settings)
        argv = [
            *settings.mlx_command,
            "--model",
            model_arg,
            "--host",
            host,
            "--port",
            str(port),
            "--max-tokens",
            str(settings.mlx_max_tokens),
            # Continuous batching (mlx_lm.server's BatchGenerator): answers decoded
            # together, prompts prefilled together; sized to what admission lets through.
            "--decode-concurrency",
            str(batch),
            "--prompt-concurrency",
            str(batch),
        ]
        # On Linux, an optimized BLAS for this process only (runtime/blas.py): the backend
        # and other engines keep their own libraries. No-op on macOS (Metal).
        env = blas.preload_env(blas.find_fast_blas(settings.mlx_blas), self.base_env(settings))
        if sys.platform == "linux":
            # MLX's CPU backend compiles fused kernels with g++ at first use, into a temp
            # file named only by the kernel: two engines (or backends) compiling the same
            # kernel at once truncate each other's source and the generation fails. Without
            # it the first answer is faster (no compiler run) and decoding is as fast
            # (measured: 12.4 vs 12.6 tok/s, first answer 5.0 vs 4.6 s). Metal is unchanged.
            env.setdefault("MLX_DISABLE_COMPILE", "1")
        return LaunchPlan(argv=argv, env=env, served_model=model_arg)

    def classify_output(
        self, text: str, fatal: str | None, last: list[str]
    ) -> LegalAssistantError | None:
        unsupported = _UNSUPPORTED.search(text)
        if unsupported:
            arch = unsupported.group(1) or unsupported.group(2)
            return LegalAssistantError(
                "model_unsupported",
                f"mlx-lm has no implementation of the {arch!r} architecture",
                log_tail=last,
            )
        if not (fatal and "generation thread died" in fatal):
            return None
        # The load thread died while the process lives on: a model that cannot be found
        # (its last lines say so), or a wedged engine.
        if _MODEL_MISSING.search(text):
            detail = fatal.split("generation thread died:", 1)[-1].strip()
            return LegalAssistantError(
                "model_not_found",
                detail[:300],
                message_fr="❌ Modèle introuvable. Vérifiez l'orthographe du modèle, "
                "la connexion Internet, ou utilisez un autre modèle MLX.",
                log_tail=last,
            )
        return LegalAssistantError("engine_wedged", fatal[:300], log_tail=last)


def _not_found(ref: ModelRef, why: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        why,
        message_fr=f"❌ Modèle introuvable : {ref.id}. Vérifiez l'orthographe du modèle, "
        "ou utilisez un autre modèle MLX.",
        message_en=f"❌ Model not found: {ref.id}. Check the model's spelling, "
        "or pick another MLX model.",
    )
