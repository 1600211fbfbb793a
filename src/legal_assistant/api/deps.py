"""Dependencies shared by the routes: app state, API key, language."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from legal_assistant.api.state import AppState
from legal_assistant.errors import Language, LegalAssistantError


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.la
    return state


State = Annotated[AppState, Depends(get_state)]


def request_language(request: Request) -> Language:
    lang = (
        getattr(request.state, "language", None)  # set by a route whose body names it
        or request.query_params.get("lang")
        or request.headers.get("accept-language", "fr")
    )
    return "en" if lang.lower().startswith("en") else "fr"


def require_api_key(request: Request) -> None:
    """Every API route checks the key when one is configured (it must be when the backend
    binds beyond loopback). Accepts `Authorization: Bearer` (OpenAI clients) or
    `X-API-Key`, or `?api_key=` for EventSource, which cannot send headers."""
    settings = request.app.state.la.settings
    if settings.auth_mode == "accounts":
        return  # api/auth_gate.py has authenticated the request (keys, sessions, API_KEY)
    expected = settings.api_key
    if not expected:
        return
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    given = given or request.query_params.get("api_key", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise LegalAssistantError("unauthorized", "send Authorization: Bearer <key>")


ApiKey = Depends(require_api_key)
