"""GET /api/models — what the user can pick in "Paramètres LLM"."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, TypedDict

from fastapi import APIRouter, Request

from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.catalog import (
    EMBEDDING_PROVIDERS,
    LLAMACPP_CATALOG,
    MLX_CATALOG,
    parse_model_id,
    ram_estimate,
)
from legal_assistant.chat.status import ENGINE_ICONS
from legal_assistant.config import Settings, is_loopback
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.providers import OllamaProvider
from legal_assistant.runtime.bundled import BUNDLED_MODEL_ID, bundled_gguf_path
from legal_assistant.runtime.installer import is_installed
from legal_assistant.runtime.model_traits import model_traits
from legal_assistant.runtime.snapshots import complete_snapshot
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

router = APIRouter(dependencies=[ApiKey])


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _hf_cached_repos(hf_home: Path) -> dict[str, int]:
    """MLX-looking repos in the local Hugging Face cache (config + safetensors)."""
    found: dict[str, int] = {}
    hub = hf_home / "hub"
    if not hub.is_dir():
        return found
    for repo_dir in hub.glob("models--*--*"):
        repo = repo_dir.name.removeprefix("models--").replace("--", "/", 1)
        snapshot = complete_snapshot(repo, hf_home)
        if snapshot is not None and any(snapshot.glob("*.safetensors")):
            found[repo] = _dir_size(repo_dir / "blobs") if (repo_dir / "blobs").is_dir() else 0
    return found


class _Common(TypedDict):
    supervisor: Supervisor
    default_id: str


def _hf_cached_ggufs(hf_home: Path) -> list[tuple[Path, int]]:
    """GGUF files in the local Hugging Face cache (servable by llama.cpp as they are)."""
    hub = hf_home / "hub"
    if not hub.is_dir():
        return []
    found = []
    for f in sorted(hub.glob("models--*--*/snapshots/*/*.gguf")):
        if f.exists():  # a dangling symlink is an unfinished download
            found.append((f, f.stat().st_size))
    return found


def _entry(
    model_id: str,
    provider: str,
    label_fr: str,
    label_en: str,
    size: int | None,
    *,
    offline: bool,
    supervisor: Supervisor,
    default_id: str,
    recommended: bool = False,
    description: str = "",
) -> dict[str, Any]:
    engine = next((e for e in supervisor.engines() if e.ref.id == model_id), None)
    return {
        "id": model_id,
        "provider": provider,
        "label": label_fr,
        "label_fr": label_fr,
        "label_en": label_en,
        "description": description,
        "size_bytes": size,
        "ram_estimate_bytes": ram_estimate(size) if size else None,
        "available_offline": offline,
        "default": model_id == default_id,
        "recommended": recommended,
        "loaded": bool(engine and engine.state is EngineState.READY),
        "state": str(engine.state) if engine else None,
    }


async def build_catalog(
    settings: Settings, supervisor: Supervisor, language: Language = "fr"
) -> dict[str, Any]:
    hf_home = settings.resolved_hf_home
    cached = await asyncio.to_thread(_hf_cached_repos, hf_home)
    models: list[dict[str, Any]] = []
    seen: set[str] = set()
    common = _Common(supervisor=supervisor, default_id=settings.default_model)
    for entry in MLX_CATALOG:
        size = entry.size_bytes
        if entry.id == BUNDLED_MODEL_ID:
            with contextlib.suppress(Exception):
                size = bundled_gguf_path().stat().st_size
            offline = True
        else:
            repo = entry.id.removeprefix("mlx:")
            offline = repo in cached
            size = cached.get(repo) or size
        models.append(
            _entry(
                entry.id,
                "mlx",
                entry.label_fr,
                entry.label_en,
                size,
                offline=offline,
                recommended=entry.recommended,
                description=entry.description,
                **common,
            )
        )
        seen.add(entry.id)
    llamacpp_ready = is_installed(settings.engines_dir, "llamacpp")
    ggufs = await asyncio.to_thread(_hf_cached_ggufs, hf_home)
    for entry in LLAMACPP_CATALOG:
        size = entry.size_bytes
        with contextlib.suppress(Exception):
            size = bundled_gguf_path().stat().st_size
        item = _entry(
            entry.id,
            "llamacpp",
            entry.label_fr,
            entry.label_en,
            size,
            offline=True,
            description=entry.description,
            **common,
        )
        item["engine_installed"] = llamacpp_ready
        models.append(item)
        seen.add(entry.id)
    for path, size in ggufs:
        model_id = f"llamacpp:{path}"
        item = _entry(
            model_id,
            "llamacpp",
            f"🦙 {path.name} (llama.cpp, cache local)",
            f"🦙 {path.name} (llama.cpp, local cache)",
            size,
            offline=True,
            **common,
        )
        item["engine_installed"] = llamacpp_ready
        models.append(item)
        seen.add(model_id)
    for repo, size in sorted(cached.items()):
        model_id = f"mlx:{repo}"
        if model_id not in seen:
            name = repo.split("/")[-1]
            models.append(
                _entry(
                    model_id,
                    "mlx",
                    f"🍎 {name} (MLX, cache local)",
                    f"🍎 {name} (MLX, local cache)",
                    size,
                    offline=True,
                    **common,
                )
            )
            seen.add(model_id)
    for engine in supervisor.engines():  # e.g. mlx:/path models started by id
        # Embedding engines are not chat models: listed by /v1/models, not in the picker.
        if engine.ref.id not in seen and engine.ref.provider not in EMBEDDING_PROVIDERS:
            name = Path(engine.ref.name).name or engine.ref.name
            label = f"{ENGINE_ICONS.get(engine.kind, '⚙️')} {name} ({engine.spec.label})"
            models.append(
                _entry(
                    engine.ref.id,
                    engine.kind,
                    label,
                    label,
                    engine.weights_bytes,
                    offline=engine.kind != "vllm",
                    **common,
                )
            )
            seen.add(engine.ref.id)
    ollama_error: str | None = None
    provider = OllamaProvider(settings.ollama_url, connect_timeout=1.0)
    try:
        for m in await provider.list_models():
            models.append(
                _entry(
                    f"ollama:{m['name']}",
                    "ollama",
                    f"🦙 {m['name']} (Ollama)",
                    f"🦙 {m['name']} (Ollama)",
                    m.get("size"),
                    offline=True,
                    **common,
                )
            )
    except LegalAssistantError as err:
        ollama_error = err.message(language)
    finally:
        await provider.aclose()
    for ep in settings.openai_endpoints:
        local = is_loopback(ep.base_url.split("//")[-1].split(":")[0].split("/")[0])
        for name in ep.models:
            models.append(
                _entry(
                    f"openai:{name}",
                    "openai",
                    f"🌐 {name} ({ep.name})",
                    f"🌐 {name} ({ep.name})",
                    None,
                    offline=local,
                    **common,
                )
            )
    await asyncio.to_thread(_add_traits, models, settings)
    return {"default": settings.default_model, "models": models, "ollama_error": ollama_error}


def _add_traits(models: list[dict[str, Any]], settings: Settings) -> None:
    """`tools` (true, false, or null when unknown) and `context_length` (tokens, or null)
    of each model, from its files (runtime/model_traits.py)."""
    for m in models:
        traits = model_traits(parse_model_id(m["id"]), settings)
        m["tools"], m["context_length"] = traits.tools, traits.context_length


@router.get("/api/models")
async def models(state: State, request: Request) -> dict[str, Any]:
    return await build_catalog(state.settings, state.supervisor, request_language(request))
