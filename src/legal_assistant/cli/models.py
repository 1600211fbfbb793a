"""`legal-assistant models cache` and `models remove ID`: what the downloaded and converted
models take on disk, and removing one without `rm -rf` (the seed's "Nettoyage du cache").

Two places hold models: the models directory (the bundled model's conversions, one per
variant) and the Hugging Face cache (`$HF_HOME/hub/models--org--repo`, downloads of MLX
repos and GGUF files). A model whose engine runs in a backend is not removed: the engine
has it open, and the next start would download it again mid-conversation.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Column, Table

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.cli.common import load_settings
from legal_assistant.cli.doctor import dir_size
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import (
    BUNDLED_ALIAS,
    BUNDLED_MODEL_ID,
    VARIANTS,
    bundled_model_dir,
    default_models_dir,
)

models_app = typer.Typer(help="The model catalog, and the models cached on disk.")


@dataclass(frozen=True, slots=True)
class CachedModel:
    model_id: str  # what `models remove` takes
    what: str
    path: str
    size_bytes: int


def _hub(settings: Settings) -> Path:
    return settings.resolved_hf_home / "hub"


def _repo_of(storage: Path) -> str:
    # huggingface_hub names a repo's storage "models--" + repo_id with "/" → "--".
    return storage.name.removeprefix("models--").replace("--", "/", 1)


def list_cached(settings: Settings) -> list[CachedModel]:
    found = []
    models = settings.models_dir or default_models_dir()
    for variant in VARIANTS:
        path = bundled_model_dir(models, variant)
        if path.is_dir():
            found.append(
                CachedModel(BUNDLED_MODEL_ID, f"bundled ({variant})", str(path), dir_size(path))
            )
    hub = _hub(settings)
    if hub.is_dir():
        for storage in sorted(hub.glob("models--*")):
            if storage.is_dir():
                repo = _repo_of(storage)
                ggufs = any(storage.glob("snapshots/*/*.gguf"))
                kind = "GGUF download" if ggufs else "Hugging Face download"
                found.append(CachedModel(repo, kind, str(storage), dir_size(storage)))
    return found


def _target(settings: Settings, model_id: str) -> tuple[ModelRef | None, list[Path]]:
    """The directories `model_id` occupies (validated: nothing outside the caches)."""
    ref = parse_model_id(model_id if ":" in model_id else f"mlx:{model_id}")
    if ref.kind == "alias" and ref.name == BUNDLED_ALIAS:
        models = settings.models_dir or default_models_dir()
        paths = [bundled_model_dir(models, v) for v in VARIANTS]
        # Temp dirs a killed conversion left (runtime/bundled.py sweeps them too).
        paths += [p for v in VARIANTS for p in models.glob(f".{bundled_model_dir(None, v).name}.*")]
        return ref, [p for p in paths if p.is_dir()]
    if ref.kind == "path":
        raise LegalAssistantError(
            "bad_request",
            f"{ref.name} is your own directory",
            message_fr=f"❌ {ref.name} est un dossier à vous : Legal Assistant ne le supprime pas.",
            message_en=f"❌ {ref.name} is your own directory: Legal Assistant does not delete it.",
        )
    repo = "/".join(ref.name.split("/")[:2])  # a llama.cpp id may name a file in the repo
    storage = _hub(settings) / ("models--" + repo.replace("/", "--"))
    return ref, [storage] if storage.is_dir() else []


def _running_in_backend(settings: Settings, ref: ModelRef, url: str | None) -> list[str]:
    """Ids of a running backend's live engines that use `ref`'s model (none when no
    backend answers)."""
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    try:
        resp = httpx.get(f"{base}/api/engines", headers=headers, timeout=3, trust_env=False)
        engines: list[dict[str, Any]] = resp.json().get("engines", [])
    except (httpx.HTTPError, ValueError, AttributeError):
        return []
    repo = "/".join(ref.name.split("/")[:2])
    return [
        str(e["id"])
        for e in engines
        if e.get("state") not in ("stopped", "failed")
        and str(e.get("model", "")).split(":", 1)[-1].startswith((ref.name, repo))
    ]


def remove_cached(settings: Settings, model_id: str, url: str | None = None) -> int:
    """Remove `model_id` from the caches; return the bytes freed."""
    ref, paths = _target(settings, model_id)
    if not paths:
        raise LegalAssistantError(
            "not_found",
            f"{model_id!r} is not in the cache",
            message_fr=f"❌ {model_id} n'est pas dans le cache (legal-assistant models cache).",
            message_en=f"❌ {model_id} is not in the cache (legal-assistant models cache).",
        )
    if ref is not None and (running := _running_in_backend(settings, ref, url)):
        raise LegalAssistantError(
            "bad_request",
            f"engine {', '.join(running)} uses it",
            message_fr=f"❌ Le modèle est chargé ({', '.join(running)}) : arrêtez-le d'abord "
            "(legal-assistant engines stop).",
            message_en=f"❌ The model is loaded ({', '.join(running)}): stop it first "
            "(legal-assistant engines stop).",
        )
    freed = 0
    for path in paths:
        freed += dir_size(path)
        # Renamed first: an engine starting meanwhile sees no model (and fetches or
        # converts it again) rather than a half-deleted one.
        doomed = path.with_name(f".removing-{path.name}.{os.getpid()}")
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return freed


def _settings() -> Settings:
    return load_settings()


@models_app.command("cache")
def cache_command(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Models downloaded or converted on this machine, with their size on disk."""
    rows = list_cached(_settings())
    if as_json:
        print(json.dumps({"models": [asdict(r) for r in rows]}, indent=2))
        return
    # The id is what `models remove` takes: never cut; the path may fold.
    table = Table(
        Column("id", no_wrap=True),
        "what",
        Column("size", justify="right", no_wrap=True),
        Column("path", overflow="fold"),
    )
    for r in rows:
        table.add_row(r.model_id, r.what, f"{r.size_bytes / 1e6:,.0f} MB", r.path)
    out = Console()
    out.print(table)
    total = sum(r.size_bytes for r in rows)
    out.print(
        f"{len(rows)} cached, {total / 1e9:.2f} GB — remove one: legal-assistant models remove ID"
    )


@models_app.command("remove")
def remove_command(
    model_id: str = typer.Argument(..., help="An id from `legal-assistant models cache`."),
    url: str = typer.Option(None, help="Backend URL (to refuse a model in use)."),
) -> None:
    """Remove a downloaded or converted model from disk (it is fetched or converted again
    the next time it is used). Refused while a running backend has it loaded."""
    try:
        freed = remove_cached(_settings(), model_id, url)
    except LegalAssistantError as err:
        Console(stderr=True).print(f"[red]{err.message('en')}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    Console().print(f"Removed {model_id} ({freed / 1e6:,.0f} MB freed).")
