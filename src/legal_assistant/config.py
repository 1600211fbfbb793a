"""All settings in one place (pydantic-settings, env prefix LEGAL_ASSISTANT_).

Values come from, in order: init kwargs, environment, an optional TOML config file
(`LEGAL_ASSISTANT_CONFIG_FILE`, default `<config dir>/config.toml`), then defaults.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_config_dir, user_data_dir
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from legal_assistant.runtime.bundled import BUNDLED_MODEL_ID


class OpenAIEndpoint(BaseModel):
    """A remote OpenAI-compatible server (vLLM, llama.cpp server, a hosted API...)."""

    name: str = "default"
    base_url: str
    api_key: str | None = None
    models: list[str] = Field(default_factory=list)


class ModelOverride(BaseModel):
    """Per-model settings, from the config file: `[models."mlx:org/repo"]`."""

    idle_ttl_s: float | None = None
    memory_gb: float | None = None  # override the memory estimate
    # Sampling of chat turns, over what the model's own files say (chat/sampling.py).
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, ge=0.5, le=2.0)


def _default_config_file() -> Path:
    return Path(
        os.environ.get("LEGAL_ASSISTANT_CONFIG_FILE")
        or Path(user_config_dir("legal-assistant")) / "config.toml"
    )


def is_loopback(host: str) -> bool:
    """True only for an address that cannot be reached from another machine. An empty host
    binds every interface (uvicorn, asyncio), so it is not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEGAL_ASSISTANT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    # --- backend ---
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    # Extra Host names answered when bound to loopback (e.g. host.docker.internal); others
    # are refused (DNS rebinding). Comma-separated in the env.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("legal-assistant")))
    surrealdb_url: str | None = None  # default: surrealkv:// under data_dir
    surrealdb_namespace: str = "legal_assistant"
    surrealdb_database: str = "main"
    surrealdb_user: str | None = None
    surrealdb_password: str | None = None
    default_model: str = BUNDLED_MODEL_ID
    max_message_chars: int = 32_000
    max_history_items: int = 200

    # --- engines ---
    # Command that starts mlx_lm.server; arguments --model/--host/--port are appended.
    mlx_command: list[str] = Field(
        default_factory=lambda: [sys.executable, "-m", "mlx_lm", "server"]
    )
    # 0 = ask the OS for a free loopback port for each engine (default).
    mlx_port: int = 0
    mlx_max_tokens: int = 1024
    # Tokens a chat turn may generate when the request does not say (at most
    # mlx_max_tokens): a long legal answer fits; a runaway one stops (docs/answers.md).
    chat_max_tokens: int = Field(default=768, ge=1)
    # Optimized BLAS preloaded into MLX engines on Linux (docs/first-answer.md): "auto"
    # (search the usual places), "off", or a library path. With one, the bundled model
    # runs as float32 (much faster prompts); without, as 4-bit.
    mlx_blas: str = "auto"
    # Answers one MLX engine decodes together (continuous batching); default: max(4,
    # physical cores), capped by max_inflight_per_engine.
    mlx_parallel: int | None = Field(default=None, ge=1)
    # --- llama.cpp (its own llama-server, built into engines_dir; docs/llamacpp.md) ---
    # Default: <engines_dir>/llamacpp/bin/llama-server
    llamacpp_command: list[str] | None = None
    llamacpp_port: int = 0
    llamacpp_n_ctx: int = Field(default=4096, ge=256)  # context per slot (tokens)
    # Slots decoded together (continuous batching); default: max(4, physical cores),
    # capped by max_inflight_per_engine.
    llamacpp_parallel: int | None = Field(default=None, ge=1)
    llamacpp_threads: int | None = None  # default: physical cores
    llamacpp_batch_size: int = Field(default=2048, ge=32)  # prompt tokens per batch
    llamacpp_cache_ram_mb: int = Field(default=1024, ge=0)  # llama-server's RAM prompt cache
    # KV slots saved on disk across swaps (data_dir/kv-slots), LRU-bounded; 0 = never save.
    kv_cache_max_gb: float = Field(default=2.0, ge=0)
    engines_dir: Path | None = (
        None  # managed engine builds; default ~/.cache/legal-assistant/engines
    )
    # --- vLLM (GPU servers; not run in CI) ---
    vllm_command: list[str] = Field(default_factory=lambda: ["vllm", "serve"])
    vllm_port: int = 0
    vllm_tensor_parallel_size: int = Field(default=1, ge=1)
    vllm_pipeline_parallel_size: int = Field(default=1, ge=1)
    vllm_gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    vllm_max_model_len: int | None = None
    vllm_distributed_executor_backend: Literal["ray", "mp"] | None = None
    models_dir: Path | None = None  # converted models; default ~/.cache/legal-assistant/models
    hf_home: Path | None = None  # default: HF_HOME or ~/.cache/huggingface
    # Seconds without any sign of progress (output, CPU time, readiness) before giving up.
    load_timeout_s: float = 30.0
    # Seconds a ready engine may send no byte to a request before it is declared wedged
    # (the request ends with engine_wedged, the engine is restarted on the next one).
    # Generous: a long grounded prompt is prefilled before the first byte.
    engine_read_timeout_s: float = Field(default=300.0, gt=0)
    # Seconds a switch waits for in-flight answers on the old engine.
    drain_timeout_s: float = 120.0
    # What to do when draining times out: "error" (keep the old engine) or "force".
    drain_policy: Literal["error", "force"] = "error"
    stop_grace_s: float = 5.0
    # Residency: "swap" = one engine per kind (the seed's behaviour); "budget" = several
    # engines while their estimated memory fits the budget, evicting the LRU idle one.
    residency: Literal["swap", "budget"] = "swap"
    memory_budget_gb: float | None = None  # default: memory_budget_fraction of total RAM
    memory_budget_fraction: float = Field(default=0.6, gt=0, le=1)
    # Unload an engine after this many idle seconds (0 = never, as in the seed).
    idle_ttl_s: float = Field(default=0.0, ge=0)
    # Models started at backend start-up, in the background (comma-separated in the env).
    preload: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Start the default model at start-up and prefill the chat system prompt, in the
    # background, so the first answer does not wait for a cold engine.
    warm_default: bool = True
    models: dict[str, ModelOverride] = Field(default_factory=dict)
    # Seconds without a downloaded byte before a model download is abandoned.
    download_stall_timeout_s: float = 60.0
    max_inflight_per_engine: int = 8
    max_queue_per_engine: int = 64
    # Requests one user runs at once on one engine; the rest wait in that user's queue,
    # served round-robin with the other users' (runtime/admission.py). None: the engine's
    # parallelism minus one (at least 1), so a colleague's question finds a free place.
    max_inflight_per_user: int | None = Field(default=None, ge=1)
    # False: one first-come-first-served queue per engine, no per-user limit (the
    # behaviour before fair admission; benchmarks/users.py compares both).
    fair_admission: bool = True
    gateway_progress_comments: bool = False
    # How long a cold start may take before those comments commit the response to 200: a
    # start that fails (or a refusal) within it is answered with its own HTTP status.
    gateway_progress_tick_s: float = Field(default=1.0, gt=0)
    # A client that stops reading a streamed answer (chat or gateway) for this long is
    # dropped: its engine lease, and every model switch waiting behind it, is released.
    stream_send_timeout_s: float = Field(default=30.0, gt=0)

    # --- embeddings (embed_serve.py, runtime/engines/embed.py; docs/retrieval.md) ---
    embed_command: list[str] | None = None  # default: <python> -m legal_assistant.embed_serve
    embed_port: int = 0
    # Model instances in the engine, each embedding one request at a time; default: the
    # physical cores, at most 4. While people search, one is kept for queries.
    embed_workers: int | None = Field(default=None, ge=1, le=64)
    embed_threads: int | None = None  # OpenMP threads a worker; default: cores / workers
    # Bulk (ingestion) requests are cut to take about this long, so a query that finds
    # every worker busy (nobody searched for a while) waits at most one of them
    # (documents/embed_queue.py; the measurements in docs/retrieval.md).
    embed_batch_target_ms: int = Field(default=100, ge=10, le=60_000)
    # Queries arriving within this window of an idle engine go in one request.
    embed_query_window_ms: float = Field(default=3.0, ge=0, le=1000)

    # --- document extraction (a worker process per document; docs/dossiers.md) ---
    ocr_enabled: bool = True  # OCR the PDF pages that have no text layer (Tesseract)
    tesseract_command: str = "tesseract"  # a name looked up on PATH, or a path
    ocr_languages: str = "fra+eng"  # Tesseract languages; those not installed are skipped
    ocr_page_timeout_s: float = Field(default=120.0, gt=0)
    extraction_timeout_s: float = Field(default=1800.0, gt=0)  # per document, wall clock
    extraction_memory_mb: int = Field(default=2048, ge=256)  # the worker's address space
    # The worker's nice value: extraction yields the CPU to searches and the engines.
    extraction_nice: int = Field(default=10, ge=0, le=19)

    # --- dossiers (docs/dossiers.md) ---
    # Largest uploaded file, refused (413) while it streams in, not after buffering it.
    max_upload_mb: int = Field(default=100, ge=1)
    max_upload_files: int = Field(default=50, ge=1)  # files in one upload request
    # Documents ingested at once: extraction (a worker process) of one overlaps the
    # embedding of another; more only queue behind the one embedding engine.
    ingest_workers: int = Field(default=2, ge=1, le=16)
    ingest_embed_batch: int = Field(default=32, ge=1, le=1024)  # per progress step, max/request
    # Grounded chat: passages put in the prompt (numbered [1]..[k]) and their budget.
    grounding_passages: int = Field(default=5, ge=1, le=20)
    grounding_max_chars: int = Field(default=6000, ge=500)

    # --- accounts (docs/accounts.md) ---
    # "none": one local user, no login (loopback only, today's behaviour); "accounts":
    # users, sessions, scoped API keys, dossiers walled per matter, the audit log.
    auth_mode: Literal["none", "accounts"] = "none"
    session_idle_s: float = Field(default=8 * 3600.0, gt=0)  # a session unused this long ends
    login_window_s: float = Field(default=900.0, gt=0)  # throttling window for failed logins
    login_max_failures: int = Field(default=10, ge=1)  # per user, and per address, per window
    min_password_chars: int = Field(default=12, ge=8)

    # --- other providers ---
    ollama_url: str = "http://localhost:11434"
    openai_endpoints: list[OpenAIEndpoint] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _default_config_file()
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("preload", "allowed_hosts", mode="before")
    @classmethod
    def _split_preload(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        # A legal assistant on the network without a key would expose clients' files.
        if not is_loopback(self.host) and not self.api_key and self.auth_mode != "accounts":
            raise ValueError(
                f"binding {self.host} (not loopback) requires LEGAL_ASSISTANT_API_KEY"
                " or LEGAL_ASSISTANT_AUTH_MODE=accounts"
            )
        return self

    @property
    def resolved_surrealdb_url(self) -> str:
        return self.surrealdb_url or f"surrealkv://{(self.data_dir / 'db').resolve()}"

    @property
    def resolved_hf_home(self) -> Path:
        if self.hf_home:
            return self.hf_home
        env = os.environ.get("HF_HOME")
        return Path(env) if env else Path.home() / ".cache" / "huggingface"

    def memory_budget_bytes(self) -> int:
        if self.memory_budget_gb is not None:
            return int(self.memory_budget_gb * 1024**3)
        import psutil

        return int(psutil.virtual_memory().total * self.memory_budget_fraction)

    def idle_ttl_for(self, model_id: str) -> float:
        override = self.models.get(model_id)
        if override is not None and override.idle_ttl_s is not None:
            return override.idle_ttl_s
        return self.idle_ttl_s

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to show in the API (no secrets)."""
        data = self.model_dump(mode="json", exclude={"api_key", "surrealdb_password"})
        for ep in data.get("openai_endpoints", []):
            ep.pop("api_key", None)
        return data
