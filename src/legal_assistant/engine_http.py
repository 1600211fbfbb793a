"""The HTTP client the backend uses to talk to inference servers.

Why not a plain `httpx.AsyncClient`: llama-server closes some kept-alive connections right
after a streamed answer while still advertising `Keep-Alive: max=100` (measured: 3-6 of 30
back-to-back streamed answers on one client met "Server disconnected without sending a
response"). The next request written on such a connection fails before any byte of an
answer — the user would see "engine crashed" on a healthy engine. httpx retries only
connection *establishment*, so this transport retries a request once when the server
dropped it before a status line, which is what browsers do for a reused connection.

The retry is safe: no response byte was received, so nothing was shown or saved twice;
the body is resent from memory (requests with a streamed body are never retried). When
the retry fails too, the *first* error is raised, so an engine that really died mid-request
is still classified by what it did (`engine_crashed`), not by "cannot connect" after it.
Only loopback hosts (our engines) get the retry: a remote OpenAI-compatible endpoint that
dropped a request may have run it, and a resend could be billed twice.
"""

from __future__ import annotations

import httpx

from legal_assistant.config import is_loopback

# Raised by the transport before a response exists: the request never got an answer.
_DROPPED_BEFORE_ANSWER = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class RetryDroppedRequest(httpx.AsyncBaseTransport):
    """Resend a request once when the server closed the connection before answering it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except _DROPPED_BEFORE_ANSWER as first:
            if not isinstance(request.stream, httpx.ByteStream) or not is_loopback(
                request.url.host
            ):
                raise
            try:
                return await self._inner.handle_async_request(request)
            except httpx.TransportError:
                raise first from None

    async def aclose(self) -> None:
        await self._inner.aclose()


def engine_client(
    timeout: httpx.Timeout | float | None = 5.0,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncClient:
    """A pooled client for engines and OpenAI-compatible endpoints. No proxy from the
    environment (`trust_env=False`): engines are on loopback, and an `HTTP_PROXY` must not
    see a legal question."""
    transport = httpx.AsyncHTTPTransport(limits=limits or httpx.Limits(), trust_env=False)
    return httpx.AsyncClient(
        trust_env=False, timeout=timeout, transport=RetryDroppedRequest(transport)
    )
