"""OllamaProvider through the real `ollama` client against tests/fakes/fake_ollama.py
(loaded from its file path by tests/app_harness.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from app_harness import consume_then_cancel, free_port, load_fake
from legal_assistant.errors import LegalAssistantError
from legal_assistant.providers import Finish, OllamaProvider, StreamItem, TokenDelta, Usage

MESSAGES = [{"role": "user", "content": "Bonjour, une question de droit du travail."}]


fake_ollama = load_fake("fake_ollama")


@pytest.fixture
def fake() -> Iterator[Any]:
    with fake_ollama.FakeOllama() as server:
        yield server


@pytest.fixture
async def provider(fake: Any) -> AsyncIterator[OllamaProvider]:
    async with OllamaProvider(fake.url) as prov:
        yield prov


async def _collect(stream: AsyncIterator[StreamItem]) -> list[StreamItem]:
    return [item async for item in stream]


async def test_streams_deltas_then_usage(fake: Any, provider: OllamaProvider) -> None:
    items = await _collect(provider.stream_chat(MESSAGES, model="llama3.2"))
    deltas = [item for item in items if isinstance(item, TokenDelta)]
    assert all(delta.content for delta in deltas)
    assert "".join(delta.content for delta in deltas) == fake.reply
    assert isinstance(items[-1], Usage)
    assert items[-1].completion_tokens == len(deltas)
    assert items[-1].prompt_tokens > 0
    assert sum(isinstance(item, Usage) for item in items) == 1
    request = fake.chat_requests[-1]
    assert request["model"] == "llama3.2"
    assert request["messages"] == MESSAGES
    assert request["stream"] is True


async def test_max_tokens_and_temperature_become_options(
    fake: Any, provider: OllamaProvider
) -> None:
    items = await _collect(
        provider.stream_chat(MESSAGES, model="qwen2.5:0.5b", max_tokens=3, temperature=0.1)
    )
    assert fake.chat_requests[-1]["options"] == {"num_predict": 3, "temperature": 0.1}
    assert sum(isinstance(item, TokenDelta) for item in items) == 3
    usage = items[-1]
    assert isinstance(usage, Usage) and usage.completion_tokens == 3
    assert Finish("length") in items  # the daemon's done_reason: max_tokens reached


async def test_sampling_becomes_ollama_options(fake: Any, provider: OllamaProvider) -> None:
    sampling = {"repetition_penalty": 1.1, "top_p": 0.9}
    items = await _collect(provider.stream_chat(MESSAGES, model="llama3.2", sampling=sampling))
    assert fake.chat_requests[-1]["options"] == {"repeat_penalty": 1.1, "top_p": 0.9}
    assert Finish("stop") in items


async def test_list_models(provider: OllamaProvider) -> None:
    models = await provider.list_models()
    assert models[0] == {
        "name": "llama3.2:latest",
        "size": 2_019_393_189,
        "parameter_size": "3.2B",
        "quantization": "Q4_K_M",
    }
    assert [m["name"] for m in models] == ["llama3.2:latest", "qwen2.5:0.5b"]


async def test_unknown_model_is_model_not_found(provider: OllamaProvider) -> None:
    with pytest.raises(LegalAssistantError) as info:
        await _collect(provider.stream_chat(MESSAGES, model="mistral:7b"))
    assert info.value.code == "model_not_found"
    assert "mistral:7b" in info.value.detail
    assert "mistral:7b" in info.value.message_fr


@pytest.mark.parametrize("call", ["stream_chat", "list_models"])
async def test_unreachable_is_provider_unavailable_in_french(call: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    async with OllamaProvider(url) as provider:
        with pytest.raises(LegalAssistantError) as info:
            if call == "stream_chat":
                await _collect(provider.stream_chat(MESSAGES, model="llama3.2"))
            else:
                await provider.list_models()
    assert time.monotonic() - started < 3.0
    assert info.value.code == "provider_unavailable"
    assert info.value.detail == url
    assert info.value.message_fr == f"❌ Ollama n'est pas démarré ({url})"
    assert f"Ollama n'est pas démarré (http://127.0.0.1:{url.rsplit(':', 1)[1]})" in (
        info.value.message("fr")
    )


async def test_daemon_dying_mid_stream_is_engine_crashed(
    fake: Any, provider: OllamaProvider
) -> None:
    fake.drop_after_tokens = 2
    received: list[StreamItem] = []
    with pytest.raises(LegalAssistantError) as info:
        async for item in provider.stream_chat(MESSAGES, model="llama3.2"):
            received.append(item)
    assert info.value.code == "engine_crashed"
    assert len(received) == 2


async def test_cancellation_closes_upstream_connection(fake: Any, provider: OllamaProvider) -> None:
    fake.stall_after_tokens = 1
    await consume_then_cancel(provider.stream_chat(MESSAGES, model="llama3.2"))
    assert await asyncio.to_thread(fake.disconnected.wait, 5)


async def test_closing_the_iterator_closes_upstream_connection(
    fake: Any, provider: OllamaProvider
) -> None:
    fake.stall_after_tokens = 1
    async with contextlib.aclosing(provider.stream_chat(MESSAGES, model="llama3.2")) as stream:
        async for item in stream:
            assert isinstance(item, TokenDelta)
            break
    assert await asyncio.to_thread(fake.disconnected.wait, 5)
