"""What the supervisor needs to know about one kind of inference server."""

from __future__ import annotations

import os
import re
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.probes import probe_completion

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

# The bind failure every Python HTTP server prints (mlx_lm.server, uvicorn-based ones).
BIND_ERROR = re.compile(r"Address already in use|error while attempting to bind|\[Errno 98\]")


def relevant_lines(tail: Sequence[str], fatal: str | None, limit: int = 12) -> list[str]:
    """The fatal line and what follows it (the traceback's last frames and its message),
    or the last lines when there is no fatal line: what a user needs to see."""
    lines = [ln for ln in tail if ln.strip()]
    if fatal and fatal in lines:
        after = lines[lines.index(fatal) :]
        return [after[0], *after[1:][-(limit - 1) :]] if len(after) > limit else after
    return lines[-limit:]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def decisive_lines(tail: Sequence[str], fatal: str | None) -> list[str]:
    """The fatal line and the last exception line after it; without a fatal line, the
    last exception line of the tail (a traceback's message) and the very last line."""
    lines = [ln for ln in tail if ln.strip()]
    start = lines.index(fatal) if fatal and fatal in lines else None
    after = lines[start + 1 :] if start is not None else lines
    exc = [ln for ln in after if _EXCEPTION_LINE.match(ln.strip())]
    picked = [fatal] if fatal else []
    if exc:
        picked.append(exc[-1].strip())
    if fatal is None and lines:
        picked.append(lines[-1])
    return picked


# progress(phase, detail, fraction) — lets a spec report work before the spawn (conversion,
# download) through the engine's event stream.
Progress = Callable[[str, str, float | None], None]


@dataclass(frozen=True, slots=True)
class EngineHandle:
    """What a spec's hooks may use of a running engine: its loopback URL, the HTTP client,
    what it was launched with. Nothing that changes the lifecycle."""

    engine_id: str
    ref: ModelRef
    base_url: str
    model_arg: str
    served_model: str
    settings: Settings
    http: httpx.AsyncClient


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
    # The setting that fixes this kind's port (named in the "port busy" hint).
    port_variable: str = ""

    @abstractmethod
    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        """Turn a model ref into the engine's --model argument (a local path when possible).
        Raises model_not_found at once when the model cannot exist (offline, bad path)."""

    @abstractmethod
    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan: ...

    # Output meaning the engine cannot run here at all (its package is missing).
    not_installed_pattern: re.Pattern[str] = re.compile(r"(?!)")  # never matches
    # The engine's own lines that doom a start (besides "not installed", "port in use").
    fatal_patterns: tuple[re.Pattern[str], ...] = ()

    def fatal_line(self, line: str) -> bool:
        """True when an output line means the start (or the running engine) is doomed."""
        patterns = (self.not_installed_pattern, BIND_ERROR, *self.fatal_patterns)
        return any(p.search(line) for p in patterns)

    def classify(
        self, *, tail: Sequence[str], exit_code: int | None, fatal: str | None
    ) -> LegalAssistantError:
        """Turn the engine's last words into a classified error: what every engine says
        the same way first, then the engine's own reading, else "crashed".

        Only the decisive lines are read — the fatal line and the last line of the
        traceback that follows it (or, without a fatal line, the last exception line) —
        never the whole tail: a prompt the engine logged may contain any words."""
        text = "\n".join(decisive_lines(tail, fatal))
        last = relevant_lines(tail, fatal)
        if self.not_installed_pattern.search(text):
            err = self.not_installed(fatal or text[-300:])
            err.log_tail = last
            return err
        if BIND_ERROR.search(text):
            return self.port_busy(fatal, last)
        known = self.classify_output(text, fatal, last)
        return known or self.crashed(exit_code, fatal, last)

    def classify_output(
        self, text: str, fatal: str | None, last: list[str]
    ) -> LegalAssistantError | None:
        """The engine's own known failures (model not found, out of memory...)."""
        return None

    async def probe_ready(self, http: httpx.AsyncClient, base_url: str, served_model: str) -> None:
        """Return once the model really answers (READY). Default: a 1-token completion,
        retried while the port refuses (see probes.py). Embedding engines embed one text."""
        await probe_completion(http, base_url, served_model)

    async def after_ready(self, handle: EngineHandle) -> None:  # noqa: B027 (optional hook)
        """Runs once the engine is proven ready and before its first request is admitted
        (llama.cpp restores saved KV slots here). Must not raise for a recoverable
        problem: log it and return; raising fails the start."""

    async def before_stop(self, handle: EngineHandle, *, reason: str) -> None:  # noqa: B027
        """Runs before a deliberate stop of an idle, healthy engine (switch, idle TTL,
        eviction, user stop, shutdown) — never for a crashed one (llama.cpp saves its KV
        slots here). Bounded by the caller; errors are logged, never raised to users."""

    def parallelism(self, settings: Settings) -> int:
        """Requests the engine answers at once (admission lets no more through to it)."""
        return settings.max_inflight_per_engine

    def fixed_port(self, settings: Settings) -> int:
        """A configured port for this kind (0 = ask the OS for a free one)."""
        return 0

    def not_installed(self, detail: str) -> LegalAssistantError:
        """The engine's command cannot run: say how to install it."""
        return LegalAssistantError("engine_not_installed", detail)

    def crashed(
        self, exit_code: int | None, fatal: str | None, last: list[str]
    ) -> LegalAssistantError:
        """The fallback classification: the engine died (or gave up) for a reason we do
        not recognize; its last lines say why."""
        detail = f"exit code {exit_code}" if exit_code is not None else (fatal or "engine exited")
        return LegalAssistantError("engine_crashed", detail, log_tail=last)

    def port_busy(self, fatal: str | None, last: list[str]) -> LegalAssistantError:
        return LegalAssistantError("port_busy", fatal or "address already in use", log_tail=last)

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
