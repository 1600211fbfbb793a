"""Engine events → the status lines a person reads in the chat (seed wording, FR/EN)."""

from __future__ import annotations

from typing import Any

from legal_assistant.errors import Language
from legal_assistant.runtime.events import EngineEvent

_MESSAGES: dict[str, dict[Language, str]] = {
    "queued": {
        "fr": "⏳ En attente de la fin d'une réponse en cours sur l'ancien modèle...",
        "en": "⏳ Waiting for an answer in progress on the previous model...",
    },
    "preparing": {
        "fr": "📦 Préparation du modèle intégré (première utilisation)...",
        "en": "📦 Preparing the bundled model (first use)...",
    },
    "downloading": {
        "fr": "⬇️ Téléchargement du modèle...",
        "en": "⬇️ Downloading the model...",
    },
    "starting": {
        "fr": "{icon} Démarrage du serveur {label}...",
        "en": "{icon} Starting the {label} server...",
    },
    "loading": {
        "fr": "⏳ Chargement du modèle en mémoire...",
        "en": "⏳ Loading the model into memory...",
    },
    "ready": {
        "fr": "✅ Serveur {label} prêt",
        "en": "✅ {label} server ready",
    },
    "stopping": {
        "fr": "🛑 Arrêt du serveur {label}...",
        "en": "🛑 Stopping the {label} server...",
    },
}

ENGINE_LABELS = {"mlx": "MLX", "llamacpp": "llama.cpp", "vllm": "vLLM"}
ENGINE_ICONS = {"mlx": "🍎", "llamacpp": "🦙", "vllm": "🚀"}


def status_message(phase: str, language: Language, kind: str = "mlx") -> str | None:
    template = _MESSAGES.get(phase, {}).get(language)
    if template is None:
        return None
    return template.format(label=ENGINE_LABELS.get(kind, kind), icon=ENGINE_ICONS.get(kind, "⚙️"))


_SILENT_TRANSITIONS = frozenset({"preparing", "queued"})


class StatusFormatter:
    """Turns one caller's engine events into status payloads, without repeating a phase
    (a start reports "starting" twice: on the transition and when the pid is known)."""

    def __init__(self, language: Language, started_at: float) -> None:
        self.language = language
        self.started_at = started_at
        self._last_phase: str | None = None

    def __call__(self, event: EngineEvent) -> dict[str, Any] | None:
        kind = event.engine.split("-", 1)[0]
        if event.old != event.new and event.phase in _SILENT_TRANSITIONS:
            # Every start passes through these states; they only deserve a line when
            # something happens in them (a conversion, a download, a wait for room).
            return None
        message = status_message(event.phase, self.language, kind)
        if message is None:
            return None
        if event.phase == self._last_phase and event.progress is None:
            return None
        self._last_phase = event.phase
        if event.phase == "downloading" and event.progress is not None:
            message = f"{message} {event.progress * 100:.0f} %"
            if event.detail:
                message = f"{message} ({event.detail})"
        payload: dict[str, Any] = {
            "phase": event.phase,
            "message": message,
            "engine": kind,
            "engine_id": event.engine,
            "model": event.model,
            "elapsed_s": round(max(0.0, event.ts - self.started_at), 2),
        }
        if event.progress is not None:
            payload["progress"] = event.progress
        if event.detail:
            payload["detail"] = event.detail
        return payload
