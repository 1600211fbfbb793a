"""Errors as values: a stable code, a human message in French and English, and detail.

Raised once where they are understood (the supervisor classifies an engine's exit or
output line; the catalog refuses a malformed id) and turned into an SSE `error` event,
a JSON 4xx/5xx body or a CLI message at the edge — never swallowed into `return False`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

Language = Literal["fr", "en"]

# code -> (http status, French message, English message)
_CATALOG: dict[str, tuple[int, str, str]] = {
    "engine_not_installed": (
        503,
        "❌ Échec du démarrage du serveur MLX. Vérifiez que mlx-lm est installé (uv sync).",
        "❌ The MLX server failed to start. Check that mlx-lm is installed (uv sync).",
    ),
    "port_busy": (
        503,
        "❌ Le port du serveur est déjà utilisé.",
        "❌ The server port is already in use.",
    ),
    "model_not_found": (
        404,
        "❌ Modèle introuvable. Vérifiez l'orthographe du modèle, la connexion Internet, "
        "ou utilisez un autre modèle MLX.",
        "❌ Model not found. Check the model's spelling, the Internet connection, "
        "or pick another MLX model.",
    ),
    "engine_crashed": (
        503,
        "❌ Le serveur du modèle s'est arrêté de façon inattendue.",
        "❌ The model server stopped unexpectedly.",
    ),
    "engine_wedged": (
        503,
        "❌ Le serveur du modèle ne répond plus ; il sera redémarré à la prochaine demande.",
        "❌ The model server stopped responding; it will be restarted on the next request.",
    ),
    "engine_stopped": (
        503,
        "🛑 Le serveur du modèle a été arrêté avant d'être prêt (arrêt demandé).",
        "🛑 The model server was stopped before it was ready (a stop was requested).",
    ),
    "engine_busy": (
        409,
        "⏳ Préchargement reporté : le modèle en place est en train de répondre.",
        "⏳ Warm-up postponed: the loaded model is answering.",
    ),
    "model_unsupported": (
        422,
        "❌ Architecture de modèle non prise en charge par ce moteur (mettez à jour mlx-lm "
        "ou choisissez un autre modèle).",
        "❌ Model architecture not supported by this engine (update mlx-lm or pick another model).",
    ),
    "timeout": (
        504,
        "❌ Le serveur du modèle n'a montré aucun progrès dans le délai imparti.",
        "❌ The model server made no progress within the allowed time.",
    ),
    "switch_timeout": (
        503,
        "❌ Le changement de modèle attend encore la fin d'une réponse en cours.",
        "❌ The model switch is still waiting for an answer in progress to finish.",
    ),
    "bad_request": (400, "❌ Requête invalide.", "❌ Invalid request."),
    "internal_error": (
        500,
        "❌ Erreur interne inattendue ; la réponse partielle est conservée. Réessayez.",
        "❌ Unexpected internal error; the partial answer is kept. Please try again.",
    ),
    "invalid_model_id": (
        400,
        "❌ Identifiant de modèle invalide.",
        "❌ Invalid model id.",
    ),
    "unknown_provider": (
        400,
        "❌ Fournisseur de modèle inconnu.",
        "❌ Unknown model provider.",
    ),
    "not_found": (404, "❌ Introuvable.", "❌ Not found."),
    "provider_unavailable": (
        503,
        "❌ Le fournisseur du modèle est injoignable.",
        "❌ The model provider is unreachable.",
    ),
    "upstream_error": (
        502,
        "❌ Le serveur du modèle a renvoyé une erreur.",
        "❌ The model server returned an error.",
    ),
    "busy": (
        429,
        "❌ Trop de requêtes en attente pour ce modèle, réessayez dans un instant.",
        "❌ Too many requests queued for this model, retry in a moment.",
    ),
    "unauthorized": (401, "❌ Clé d'API manquante ou invalide.", "❌ Missing or invalid API key."),
    "shutting_down": (
        503,
        "❌ Le serveur s'arrête.",
        "❌ The server is shutting down.",
    ),
    "data_dir_locked": (
        409,
        "❌ Un autre Legal Assistant utilise déjà ce dossier de données.",
        "❌ Another Legal Assistant backend already uses this data directory.",
    ),
    "storage_error": (
        503,
        "❌ Impossible d'enregistrer dans le dossier de données (disque plein ou dossier "
        "inutilisable). Libérez de l'espace puis redémarrez Legal Assistant ; les "
        "conversations déjà enregistrées sont conservées.",
        "❌ Cannot write to the data directory (disk full or unusable directory). Free some "
        "space, then restart Legal Assistant; conversations saved so far are kept.",
    ),
    # --- documents (extraction; legal_assistant.documents.errors.DocumentError) ---
    "unsupported_type": (
        415,
        "❌ Type de fichier non pris en charge (PDF, DOCX, ODT, RTF, TXT, Markdown, HTML).",
        "❌ Unsupported file type (PDF, DOCX, ODT, RTF, TXT, Markdown, HTML).",
    ),
    "empty_file": (
        400,
        "❌ Le fichier est vide ou ne contient aucun texte.",
        "❌ The file is empty or contains no text.",
    ),
    "content_mismatch": (
        415,
        "❌ Le contenu du fichier ne correspond pas à son extension.",
        "❌ The file's content does not match its extension.",
    ),
    "encrypted_pdf": (
        422,
        "❌ Ce PDF est protégé par un mot de passe : retirez la protection puis réessayez.",
        "❌ This PDF is password-protected: remove the protection and try again.",
    ),
    "corrupt_file": (
        422,
        "❌ Le fichier est endommagé et ne peut pas être lu.",
        "❌ The file is damaged and cannot be read.",
    ),
    "zip_bomb": (
        422,
        "❌ Le document se décompresse en une taille anormale (archive piégée) : refusé.",
        "❌ The document decompresses to an abnormal size (zip bomb): refused.",
    ),
    "extraction_timeout": (
        422,
        "❌ L'extraction du texte a dépassé le temps ou les ressources autorisés.",
        "❌ Text extraction exceeded the allowed time or resources.",
    ),
    "extraction_failed": (
        422,
        "❌ L'extraction du texte a échoué.",
        "❌ Text extraction failed.",
    ),
}

_CATALOG.update(
    {
        # --- accounts (legal_assistant.accounts; docs/accounts.md). One message for an
        # unknown user, a wrong password and a disabled account: no user enumeration.
        "login_failed": (
            401,
            "❌ Identifiant ou mot de passe incorrect.",
            "❌ Wrong username or password.",
        ),
        "not_signed_in": (
            401,
            "🔒 Connectez-vous pour continuer (session absente ou expirée).",
            "🔒 Sign in to continue (no session, or it expired).",
        ),
        "too_many_attempts": (
            429,
            "⏳ Trop de tentatives de connexion : réessayez plus tard.",
            "⏳ Too many sign-in attempts: try again later.",
        ),
        "forbidden": (
            403,
            "⛔ Vous n'avez pas le droit de faire cela.",
            "⛔ You are not allowed to do this.",
        ),
        "csrf_failed": (
            403,
            "⛔ Requête refusée : jeton anti-CSRF absent ou invalide (rechargez la page).",
            "⛔ Request refused: missing or invalid CSRF token (reload the page).",
        ),
        "weak_password": (
            400,
            "❌ Mot de passe trop court.",
            "❌ Password too short.",
        ),
        "conflict": (
            409,
            "❌ Ce nom est déjà pris.",
            "❌ This name is already taken.",
        ),
        "quota_exceeded": (
            429,
            "⏳ Quota de jetons du jour épuisé pour cette clé d'API.",
            "⏳ This API key's daily token quota is spent.",
        ),
    }
)

_CATALOG.update(
    {
        # --- dossiers (uploads and ingestion jobs; documents/files.py, documents/ingest.py)
        "file_too_large": (
            413,
            "❌ Fichier trop volumineux.",
            "❌ File too large.",
        ),
        "file_missing": (
            410,
            "❌ Le fichier de ce document a disparu du dossier de données : ajoutez-le à nouveau.",
            "❌ This document's file is gone from the data directory: add it again.",
        ),
        "ingestion_failed": (
            503,
            "❌ L'indexation du document a échoué ; réessayez en l'ajoutant à nouveau.",
            "❌ Indexing the document failed; try adding it again.",
        ),
    }
)

_CATALOG.update(
    {
        # --- fiche d'arrêt (judgments/brief.py, api/routes/briefs.py)
        "not_a_judgment": (
            422,
            "❌ Ce document n'est pas une décision de justice : pas de fiche d'arrêt.",
            "❌ This document is not a court decision: no case brief.",
        ),
    }
)

_CATALOG.update(
    {
        # --- a document read as a court decision (api/routes/judgments.py)
        "judgment_not_ready": (
            409,
            "⏳ Le document n'est pas encore prêt : sa structure sera disponible après son "
            "indexation.",
            "⏳ The document is not ready yet: its structure will be available once it is indexed.",
        ),
    }
)

ERROR_CODES = frozenset(_CATALOG)


class LegalAssistantError(Exception):
    """An error the user can understand: `code` is stable, messages are human."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        message_fr: str | None = None,
        message_en: str | None = None,
        log_tail: Sequence[str] = (),
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code not in _CATALOG:
            raise ValueError(f"unknown error code {code!r}")
        status, fr, en = _CATALOG[code]
        self.code = code
        self.detail = detail
        self.message_fr = message_fr or fr
        self.message_en = message_en or en
        self.log_tail = list(log_tail)
        self.http_status = http_status or status
        self.headers = dict(headers) if headers else None  # e.g. Retry-After on a 429
        super().__init__(f"{code}: {self.message_en}" + (f" ({detail})" if detail else ""))

    def message(self, language: Language = "fr") -> str:
        return self.message_fr if language == "fr" else self.message_en

    def to_dict(self, language: Language = "fr") -> dict[str, object]:
        body: dict[str, object] = {
            "code": self.code,
            "message": self.message(language),
            "detail": self.detail,
        }
        if self.log_tail:
            body["log_tail"] = self.log_tail
        return body
