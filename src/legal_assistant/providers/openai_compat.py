"""Streaming client for OpenAI-compatible chat servers (mlx_lm.server, vLLM, llama.cpp...).

Written on plain httpx rather than the `openai` SDK because we need control over three
things the SDK hides:

* the request body is serialized here and sent with an explicit Content-Length:
  mlx_lm.server reads exactly Content-Length bytes and cannot read a chunked body;
* the response is read inside `async with client.stream(...)`, so when the client of the
  gateway goes away (task cancelled, iterator closed) the upstream connection is closed at
  once and the engine stops generating instead of finishing an answer nobody reads;
* every failure becomes a `LegalAssistantError` whose code says what happened: could not
  connect (provider_unavailable), the server answered with an error (upstream_error), the
  connection died or the stream ended without `[DONE]` (engine_crashed; mlx_lm.server
  speaks HTTP/1.0, so a crashed engine looks like a clean end of body), or no byte
  arrived for `read_timeout` seconds (timeout).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any

import httpx

from legal_assistant.errors import LegalAssistantError
from legal_assistant.providers.base import Finish, StreamItem, TokenDelta, Usage
from legal_assistant.sse_client import aiter_sse_lines

# How much of an error body goes into `detail`: enough for a traceback line, never a page.
_DETAIL_BODY_CHARS = 500


class OpenAICompatProvider:
    """A `ChatProvider` for one OpenAI-compatible server.

    `base_url` includes the `/v1` prefix (e.g. `http://127.0.0.1:8081/v1`). The model name
    is sent exactly as given: mlx_lm.server resolves it as a path or Hugging Face repo.
    `read_timeout` bounds the wait for *each* read, not the whole answer; it is generous
    because a model that is still loading may take minutes before its first token.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._read_timeout = read_timeout
        # Passed per request, so it also applies to a client supplied by the caller.
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._timeout)

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it (a shared one is left open)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> OpenAICompatProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def stream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sampling: Mapping[str, float] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """Yield `TokenDelta`s as the server sends them, and `Usage` when it reports it.

        Raises `LegalAssistantError`; see the module docstring for the codes.
        """
        url = f"{self.base_url}/chat/completions"
        payload: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        payload.update(sampling or {})
        if temperature is not None:
            payload["temperature"] = temperature
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = self._headers()
        headers["Accept"] = "text/event-stream"
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        try:
            async with self._client.stream(
                "POST", url, content=body, headers=headers, timeout=self._timeout
            ) as response:
                if response.status_code >= 400:
                    raise await _status_error(response, url)
                content_type = response.headers.get("content-type", "")
                if "event-stream" not in content_type:
                    await response.aread()
                    raise LegalAssistantError(
                        "upstream_error",
                        f"{url} answered {content_type or 'no content type'} instead of "
                        f"an event stream: {_truncate(response.text)}",
                    )
                async for line in aiter_sse_lines(response):
                    data = _sse_data(line)
                    if data is None:
                        continue
                    if data == "[DONE]":
                        return
                    for item in _parse_chunk(data, url):
                        yield item
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, self._read_timeout) from exc
        raise LegalAssistantError(
            "engine_crashed", f"the stream from {url} ended without [DONE] (engine exited?)"
        )

    async def list_models(self) -> list[str]:
        """Model ids from `GET {base_url}/models`."""
        url = f"{self.base_url}/models"
        try:
            response = await self._client.get(url, headers=self._headers(), timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, self._read_timeout) from exc
        if response.status_code >= 400:
            raise await _status_error(response, url)
        try:
            data = response.json()
        except ValueError as exc:
            raise LegalAssistantError(
                "upstream_error", f"{url} returned invalid JSON: {_truncate(response.text)}"
            ) from exc
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise LegalAssistantError(
                "upstream_error", f"{url} returned no model list: {_truncate(response.text)}"
            )
        return [str(entry["id"]) for entry in entries if isinstance(entry, dict) and "id" in entry]


def _truncate(text: str) -> str:
    text = text.strip()
    if len(text) <= _DETAIL_BODY_CHARS:
        return text
    return text[:_DETAIL_BODY_CHARS] + "…"


async def _status_error(response: httpx.Response, url: str) -> LegalAssistantError:
    """An HTTP error status: keep the (truncated) body, it is the only clue to the cause."""
    try:
        await response.aread()
        body = response.text
    except httpx.HTTPError:
        body = "<body unreadable>"
    return LegalAssistantError(
        "upstream_error", f"HTTP {response.status_code} from {url}: {_truncate(body)}"
    )


def _transport_error(exc: httpx.HTTPError, url: str, read_timeout: float) -> LegalAssistantError:
    """Classify an httpx failure by what it says about the server."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol):
        return LegalAssistantError("provider_unavailable", f"cannot connect to {url}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return LegalAssistantError(
            "timeout", f"no data from {url} for {read_timeout:g} s ({type(exc).__name__})"
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return LegalAssistantError(
            "engine_crashed", f"connection to {url} dropped: {type(exc).__name__}: {exc}"
        )
    return LegalAssistantError("upstream_error", f"{url}: {type(exc).__name__}: {exc}")


def _sse_data(line: str) -> str | None:
    """The payload of an SSE `data:` line; None for comments, event names and blanks."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


def _parse_chunk(data: str, url: str) -> list[StreamItem]:
    """Items carried by one `chat.completion.chunk`: a delta, the finish reason, a usage
    report, or several of them."""
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise LegalAssistantError(
            "upstream_error", f"{url} sent a non-JSON event: {_truncate(data)}"
        ) from exc
    if not isinstance(chunk, dict):
        raise LegalAssistantError("upstream_error", f"{url} sent an unexpected event: {data!r}")
    if chunk.get("error"):
        raise LegalAssistantError(
            "upstream_error", f"{url} reported an error: {_truncate(json.dumps(chunk['error']))}"
        )
    items: list[StreamItem] = []
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                items.append(TokenDelta(content))
        reason = choices[0].get("finish_reason")
        if isinstance(reason, str) and reason:
            items.append(Finish(reason))
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        items.append(
            Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        )
    return items
