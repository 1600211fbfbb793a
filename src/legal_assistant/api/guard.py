"""Requests a web page could make the user's browser send to the backend.

* Host (DNS rebinding): bound to loopback, the backend answers only requests addressed to
  a loopback name (localhost, *.localhost, 127.0.0.0/8, [::1]), its configured host or a
  name in `allowed_hosts`. A page that re-points its own domain at 127.0.0.1 sends its own
  domain as Host: refused. Bound beyond loopback, the API key does this job.
* Origin (cross-site requests): a state-changing request (POST, DELETE...) whose Origin
  is not the backend's own is refused. Browsers send "simple" cross-site POSTs without a
  CORS preflight, so without this a page elsewhere could start engines or write into the
  conversation history. Clients that are not browsers send no Origin: not affected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from legal_assistant.config import is_loopback
from legal_assistant.errors import LegalAssistantError

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host_header: str) -> str:
    """`Host` value without its port, lower-case, without a trailing dot."""
    value = host_header.strip().lower()
    if value.startswith("["):  # [::1]:8000
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class BrowserGuard:
    """Pure ASGI middleware (streamed responses pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        err, status = refusal
        english = Request(scope).headers.get("accept-language", "fr")[:2].lower() == "en"
        body: dict[str, Any] = err.to_dict("en" if english else "fr")
        body["type"] = err.code
        await JSONResponse({"error": body}, status_code=status)(scope, receive, send)

    def _refusal(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[LegalAssistantError, int] | None:
        state = getattr(getattr(scope.get("app"), "state", None), "la", None)
        bound = state.settings.host if state is not None else "127.0.0.1"
        allowed = {h.lower() for h in state.settings.allowed_hosts} if state is not None else set()
        host = headers.get("host", "")
        if is_loopback(bound):
            name = host_name(host)
            if not (
                is_loopback(name)
                or name.endswith(".localhost")
                or name == bound.lower()
                or name in allowed
            ):
                return (
                    LegalAssistantError(
                        "bad_request",
                        f"Host {name[:80]!r} is not served here",
                        message_fr="❌ Hôte non autorisé : ouvrez l'application par "
                        "http://127.0.0.1 ou http://localhost.",
                        message_en="❌ Host not allowed: open the app through "
                        "http://127.0.0.1 or http://localhost.",
                    ),
                    400,
                )
        origin = headers.get("origin")
        if scope["method"] not in _SAFE_METHODS and origin is not None:
            netloc = urlsplit(origin).netloc.lower() if origin != "null" else "null"
            if netloc != host.strip().lower():
                return (
                    LegalAssistantError(
                        "bad_request",
                        f"cross-origin {scope['method']} from {origin[:80]!r}",
                        message_fr="❌ Requête refusée : elle vient d'une autre page web.",
                        message_en="❌ Request refused: it comes from another web page.",
                    ),
                    403,
                )
        return None
