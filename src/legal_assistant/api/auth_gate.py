"""Authentication for every request, before any route (accounts mode).

Deny by default: a request is let through only with a live session or a valid key
(accounts/service.py says which credentials exist), except

* `GET /healthz`,
* `POST /api/auth/login`,
* the static web UI (`GET`/`HEAD` of paths outside `/api`, `/v1`, `/ollama`, `/metrics`):
  files that hold no data, so the login page can load; everything they show comes from
  the API, which is gated.

Being here rather than in each router is what makes "a new route cannot escape" true for
authentication; what a principal may do with a given dossier or conversation is the
access policy's job (accounts/policy.py).

Then, in order: a key's scope must cover the path (`gateway` for /v1 and /ollama, `read`
for other GETs, `write` for the rest); a state-changing request authenticated by the
session cookie must carry that session's CSRF token in `X-CSRF-Token`. Refusals speak the
protocol of the path (OpenAI, Anthropic, Ollama error bodies, or ours) and are audited.
The principal is left on `request.state.principal` (`principal_of` reads it).

`AUTH_MODE=none`: nothing happens here (the local principal; the optional `API_KEY` is
checked by the routes' `ApiKey` dependency, as before).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legal_assistant.accounts import audit, keys
from legal_assistant.accounts.metering import UsageMeter
from legal_assistant.accounts.service import Accounts, Credential
from legal_assistant.accounts.sessions import COOKIE_NAME
from legal_assistant.errors import LegalAssistantError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
GATED_PREFIXES = ("/api/", "/api", "/v1", "/ollama", "/metrics")
LOGIN_PATH = "/api/auth/login"


def needed_scope(method: str, path: str) -> str:
    if path == "/v1" or path.startswith(("/v1/", "/ollama")):
        return "gateway"
    return "read" if method in SAFE_METHODS else "write"


def spends_tokens(method: str, path: str) -> bool:
    """Requests that make an engine generate or embed (a key's daily quota applies)."""
    return method == "POST" and (
        needed_scope(method, path) == "gateway" or path == "/api/chat/stream"
    )


def quota_spent(daily_tokens: int) -> LegalAssistantError:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return LegalAssistantError(
        "quota_exceeded",
        f"{daily_tokens} tokens a day (UTC)",
        headers={"Retry-After": str(max(1, int((midnight - now).total_seconds())))},
    )


def is_public(method: str, path: str) -> bool:
    if path == "/healthz" or (path == LOGIN_PATH and method == "POST"):
        return True
    gated = any(path == p or path.startswith(p + "/") for p in ("/api", "/v1", "/ollama"))
    return method in ("GET", "HEAD") and not gated and not path.startswith("/metrics")


def refusal(path: str, err: LegalAssistantError, language: str = "fr") -> Response:
    """The error body of the protocol the client speaks on this path."""
    # Imported here: the gateway route modules import the app's dependencies.
    from legal_assistant.api.routes.anthropic_gateway import anthropic_error
    from legal_assistant.api.routes.ollama_api import ollama_error
    from legal_assistant.api.routes.openai_gateway import openai_error

    if path.startswith("/v1/messages"):
        return anthropic_error(err)
    if path == "/v1" or path.startswith("/v1/"):
        return openai_error(err)
    if path.startswith("/ollama"):
        return ollama_error(err)
    body: dict[str, Any] = err.to_dict("en" if language == "en" else "fr")
    body["type"] = err.code
    return JSONResponse({"error": body}, status_code=err.http_status, headers=err.headers)


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


class AuthGate:
    """Pure ASGI middleware (streamed responses pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = getattr(getattr(scope.get("app"), "state", None), "la", None)
        accounts: Accounts | None = getattr(state, "accounts", None)
        if scope["type"] != "http" or accounts is None or not accounts.enabled:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        method, path = scope["method"], scope["path"]
        if is_public(method, path):
            await self.app(scope, receive, send)
            return
        language = "en" if request.headers.get("accept-language", "")[:2].lower() == "en" else "fr"
        credential, err = await self._authenticate(accounts, request, method, path)
        if err is not None:
            who = credential.principal.username if credential else "anonymous"
            address = scope["client"][0] if scope.get("client") else None
            if not (credential is None and path == "/api/auth/me"):  # the UI's "am I in?"
                await audit.record(
                    accounts.db,
                    user=who,
                    action=f"{method} {path}"[:120],
                    resource=path[:300],
                    outcome="denied",
                    address=address,
                )
            await refusal(path, err, language)(scope, receive, send)
            return
        assert credential is not None
        scope.setdefault("state", {})["principal"] = credential.principal
        scope["state"]["session"] = credential.session
        if credential.key is None:
            await self.app(scope, receive, send)
            return
        await self._metered(accounts, credential.key.id, scope, receive, send)

    async def _metered(
        self, accounts: Accounts, key_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Count a key's request and the tokens its answer reports (the daily quota)."""
        meter = UsageMeter()

        async def metered_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                meter.feed(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, metered_send)
        finally:
            await keys.add_usage(accounts.db, key_id, meter.close())

    async def _authenticate(
        self, accounts: Accounts, request: Request, method: str, path: str
    ) -> tuple[Credential | None, LegalAssistantError | None]:
        secret = bearer(request)
        credential: Credential | None = None
        if secret is not None:
            credential = await accounts.from_bearer(secret)
            if credential is None:
                return None, LegalAssistantError("unauthorized", "unknown, expired or revoked key")
        else:
            cookie = request.cookies.get(COOKIE_NAME)
            if cookie:
                credential = await accounts.from_cookie(cookie)
            if credential is None:
                return None, LegalAssistantError("not_signed_in")
        scope_name = needed_scope(method, path)
        if scope_name not in credential.principal.scopes:
            return credential, LegalAssistantError(
                "forbidden",
                f"this key has no {scope_name!r} scope",
                message_fr=f"⛔ Cette clé d'API n'a pas la portée « {scope_name} ».",
                message_en=f"⛔ This API key lacks the {scope_name!r} scope.",
            )
        key = credential.key
        if (
            key is not None
            and key.daily_tokens is not None
            and key.tokens_today >= key.daily_tokens
            and spends_tokens(method, path)
        ):
            return credential, quota_spent(key.daily_tokens)
        session = credential.session
        if session is not None and method not in SAFE_METHODS:
            given = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
                return credential, LegalAssistantError("csrf_failed")
        return credential, None
