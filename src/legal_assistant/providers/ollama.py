"""Chat provider for a local Ollama daemon, through the official `ollama` client.

Ollama is not managed by us (the user starts it, or not), so the common failure is that it
is simply absent: that must be said plainly, in French first, and fast. The `ollama`
client defaults to no timeout at all, so it is built here with a short connect timeout
(an absent daemon fails in milliseconds, a firewalled host within seconds, never a long
hang) and a generous per-read timeout (loading a model can take minutes before the first
token).

The `ollama` client raises a mix of exception types depending on the call: the builtin
`ConnectionError` for plain requests, raw `httpx.ConnectError` for streamed ones,
`ollama.ResponseError` for HTTP errors and `{"error": ...}` lines. All of them are
turned into `LegalAssistantError` here so the gateway only ever sees our codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any, TypedDict, cast

import httpx
import ollama
from ollama import ChatResponse

from legal_assistant.errors import LegalAssistantError
from legal_assistant.providers.base import Finish, StreamItem, TokenDelta, Usage

DEFAULT_OLLAMA_URL = "http://localhost:11434"


class OllamaModelInfo(TypedDict):
    """One installed model, as listed by `GET /api/tags`."""

    name: str
    size: int  # bytes on disk
    parameter_size: str | None  # e.g. "8.0B"
    quantization: str | None  # e.g. "Q4_K_M"


class OllamaProvider:
    """A `ChatProvider` for the Ollama daemon at `url` (e.g. `http://127.0.0.1:11434`)."""

    def __init__(
        self,
        url: str = DEFAULT_OLLAMA_URL,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._read_timeout = read_timeout
        self._client = ollama.AsyncClient(
            host=self.url, timeout=httpx.Timeout(read_timeout, connect=connect_timeout)
        )

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> OllamaProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def unavailable_error(self) -> LegalAssistantError:
        """The error for "no Ollama listening at this URL" (its French text is specified)."""
        return LegalAssistantError(
            "provider_unavailable",
            detail=self.url,
            message_fr=f"❌ Ollama n'est pas démarré ({self.url})",
            message_en=f"❌ Ollama is not running ({self.url})",
        )

    async def stream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sampling: Mapping[str, float] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """Yield a `TokenDelta` per non-empty chunk, then `Usage` from the final chunk.

        The inner stream is closed explicitly (`aclosing`): if our caller closes this
        generator while it is suspended at a `yield`, the `ollama` client's own generator
        (which holds the HTTP response) is closed before we return, instead of whenever
        the interpreter finalizes it; until then Ollama would keep generating for nobody.
        """
        # Ollama's option names: repetition_penalty is its repeat_penalty.
        options: dict[str, Any] = {
            ("repeat_penalty" if k == "repetition_penalty" else k): v
            for k, v in (sampling or {}).items()
        }
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if temperature is not None:
            options["temperature"] = temperature
        try:
            stream = await self._client.chat(
                model=model, messages=messages, stream=True, options=options or None
            )
            # At runtime this is the client's async generator; its annotation is wider.
            async with contextlib.aclosing(cast("AsyncGenerator[ChatResponse, None]", stream)):
                async for part in stream:
                    content = part.message.content
                    if content:
                        yield TokenDelta(content)
                    if part.done:
                        if part.done_reason:
                            yield Finish(part.done_reason)
                        yield Usage(
                            prompt_tokens=part.prompt_eval_count or 0,
                            completion_tokens=part.eval_count or 0,
                        )
                        return
        except ollama.ResponseError as exc:
            raise self._response_error(exc, model) from exc
        except (httpx.HTTPError, ConnectionError) as exc:
            raise self._transport_error(exc) from exc
        except ValueError as exc:  # a line that is not JSON, or not a chat response
            raise LegalAssistantError(
                "upstream_error", f"{self.url} sent an unreadable chat chunk: {exc}"
            ) from exc
        raise LegalAssistantError(
            "engine_crashed", f"the stream from {self.url} ended before its final chunk"
        )

    async def list_models(self) -> list[OllamaModelInfo]:
        """Installed models from `GET /api/tags`."""
        try:
            listing = await self._client.list()
        except ollama.ResponseError as exc:
            raise LegalAssistantError(
                "upstream_error", f"{self.url}/api/tags: {exc.error} (HTTP {exc.status_code})"
            ) from exc
        except (httpx.HTTPError, ConnectionError) as exc:
            raise self._transport_error(exc) from exc
        except ValueError as exc:
            raise LegalAssistantError(
                "upstream_error", f"{self.url}/api/tags returned an unreadable list: {exc}"
            ) from exc
        models: list[OllamaModelInfo] = []
        for entry in listing.models:
            details = entry.details
            models.append(
                OllamaModelInfo(
                    name=entry.model or "",
                    size=int(entry.size or 0),
                    parameter_size=details.parameter_size if details else None,
                    quantization=details.quantization_level if details else None,
                )
            )
        return models

    def _response_error(self, exc: ollama.ResponseError, model: str) -> LegalAssistantError:
        error = str(exc.error)
        if exc.status_code == 404 and "model" in error.lower():
            return LegalAssistantError(
                "model_not_found",
                f"{model}: {error}",
                message_fr=f"❌ Modèle Ollama introuvable : {model}. "
                f"Installez-le avec « ollama pull {model} ».",
                message_en=f"❌ Ollama model not found: {model}. "
                f"Install it with `ollama pull {model}`.",
            )
        status = f"HTTP {exc.status_code}" if exc.status_code > 0 else "in stream"
        return LegalAssistantError("upstream_error", f"{self.url} ({status}): {error}")

    def _transport_error(self, exc: BaseException) -> LegalAssistantError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | ConnectionError):
            return self.unavailable_error()
        if isinstance(exc, httpx.TimeoutException):
            return LegalAssistantError(
                "timeout", f"no data from {self.url} for {self._read_timeout:g} s"
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return LegalAssistantError(
                "engine_crashed", f"connection to {self.url} dropped: {type(exc).__name__}: {exc}"
            )
        return LegalAssistantError("upstream_error", f"{self.url}: {type(exc).__name__}: {exc}")
