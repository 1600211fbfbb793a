"""Warming an engine before the user sends (real `mlx_lm.server`, the bundled model, real
SurrealDB, the real chat turn): the prefill lands in the engine's prompt cache and the
first answer only processes the user's own words."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from legal_assistant.catalog import parse_model_id
from legal_assistant.chat.service import ChatService
from legal_assistant.chat.turn import ChatRequest
from legal_assistant.config import Settings
from legal_assistant.providers import OpenAICompatProvider
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.runtime.warmup import Warmer, grounded_warm_messages, warm, warm_messages
from legal_assistant.store import Database

BUNDLED = "mlx:smollm2-135m"
QUESTION = "Qu'est-ce qu'un contrat de bail ?"


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, keeping each request body and each streamed response:
    what the chat turn sent to the engine and the usage the engine reported."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[dict[str, Any]] = []
        self.received: list[list[bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(json.loads(request.content))
        response = await self.inner.handle_async_request(request)
        chunks: list[bytes] = []
        self.received.append(chunks)
        upstream = response.stream
        assert isinstance(upstream, httpx.AsyncByteStream)

        class Tee(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in upstream:
                    chunks.append(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await upstream.aclose()

        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Tee(),
            extensions=response.extensions,
        )

    def last_usage(self) -> dict[str, Any]:
        """The `usage` object of the last streamed answer (stream_options.include_usage)."""
        text = b"".join(self.received[-1]).decode()
        for line in text.splitlines():
            if line.startswith("data: {"):
                data = json.loads(line[6:])
                if data.get("usage"):
                    usage: dict[str, Any] = data["usage"]
                    return usage
        raise AssertionError(f"no usage in the engine's stream: {text[-300:]!r}")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def turn(chat: ChatService) -> list[str]:
    events = []
    async for ev in chat.stream(await chat.prepare(ChatRequest(message=QUESTION, max_tokens=4))):
        events.append(ev.event)
        assert ev.event != "error", ev.data
    return events


def processed(usage: dict[str, Any]) -> int:
    """Prompt tokens the engine actually ran (the rest came from its prompt cache)."""
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return int(usage["prompt_tokens"]) - int(cached)


async def test_warm_start_primes_the_prompt_cache_of_the_first_answer(
    settings: Settings, bundled_model: Path, make_sup: Callable[[Settings], Supervisor]
) -> None:
    sup = make_sup(settings)
    db = Database()
    await db.connect(settings.resolved_surrealdb_url, "t", "t")
    transport = RecordingTransport()
    http = httpx.AsyncClient(transport=transport, timeout=120)
    chat = ChatService(settings, sup, db, http=http)
    try:
        # Cold: the turn starts the engine; its whole prompt is processed.
        assert "done" in await turn(chat)
        cold = transport.last_usage()
        assert processed(cold) == cold["prompt_tokens"] > 40
        await sup.stop(BUNDLED)

        # Warm: picked (started + prefilled) before the user sends.
        result = await warm(sup, BUNDLED, language="fr")
        assert result.started and result.prefilled
        assert "done" in await turn(chat)
        first = transport.last_usage()
        # The warm-up was the chat turn's own message format, minus the user's words.
        turn_messages = transport.sent[-1]["messages"]
        assert turn_messages[0] == warm_messages("fr")[0]
        assert [m["role"] for m in turn_messages] == [m["role"] for m in warm_messages("fr")]
        assert first["prompt_tokens"] == cold["prompt_tokens"]
        # Only the user's words (and the template around them) are left to process.
        assert processed(first) * 4 <= processed(cold), (cold, first)

        # The dossier system prompt was prefilled too: a grounded turn's first message
        # finds it in the cache (issue 20).
        engine = sup.engine_for(parse_model_id(BUNDLED))
        assert engine is not None and engine.served_model is not None
        provider = OpenAICompatProvider(f"{engine.base_url}/v1", client=http)
        question = f"Extraits du dossier :\n\n[1] (bail.pdf, p. 1) Le bail est...\n\n{QUESTION}"
        grounded = [grounded_warm_messages("fr")[0], {"role": "user", "content": question}]
        stream = provider.stream_chat(grounded, model=engine.served_model, max_tokens=1)
        async with contextlib.aclosing(stream):
            async for _ in stream:
                pass
        usage = transport.last_usage()
        assert usage["prompt_tokens"] - processed(usage) >= 40, usage
    finally:
        await chat.aclose()
        await http.aclose()
        await transport.aclose()
        await db.close()


async def test_warm_counts_as_a_use_for_the_idle_ttl(
    settings: Settings, bundled_model: Path, make_sup: Callable[[Settings], Supervisor]
) -> None:
    from app_harness import poll

    sup = make_sup(settings.model_copy(update={"idle_ttl_s": 600.0}))
    engine = await sup.ensure_ready(BUNDLED)
    before = await poll(
        lambda: (
            (left := engine.status()["idle_expires_in_s"]) is not None and left < 599.5 and left
        ),
        timeout=30,
        what="the idle TTL to run down",
    )
    await warm(sup, BUNDLED, language="en")
    after = engine.status()["idle_expires_in_s"]
    assert after is not None and after > before


async def test_warmer_joins_a_warm_up_in_progress(
    settings: Settings, bundled_model: Path, make_sup: Callable[[Settings], Supervisor]
) -> None:
    sup = make_sup(settings)
    warmer = Warmer(sup)
    try:
        first = warmer.start(BUNDLED, "fr")
        assert warmer.start(BUNDLED, "fr") is first
        assert warmer.warming(BUNDLED)
        result = await first
        assert result is not None and result.prefilled
        assert not warmer.warming(BUNDLED)
        # Once done, a new pick warms again (cheap: the engine and its cache are there).
        again = await warmer.start(BUNDLED, "fr")
        assert again is not None and not again.started
    finally:
        await warmer.aclose()
