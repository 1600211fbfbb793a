"""OpenAICompatProvider against a tiny OpenAI-compatible streaming server over real HTTP.

The server below is deliberately minimal and scenario-driven (one `mode` per test): it
answers like mlx_lm.server does (HTTP/1.0, `text/event-stream`, body ended by closing
the connection), records what it received, and can fail in the ways an engine fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app_harness import consume_then_cancel, free_port
from legal_assistant.errors import LegalAssistantError
from legal_assistant.providers import OpenAICompatProvider, StreamItem, TokenDelta, Usage

MESSAGES = [{"role": "user", "content": "Qu'est-ce qu'un bail commercial ?"}]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.disconnected = threading.Event()
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _delta(content: str, role: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {"content": content}
    if role:
        delta["role"] = role
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # like mlx_lm.server: the body ends when the socket does
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "a"}, {"id": "b/c"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append((dict(self.headers.items()), self.rfile.read(length)))
        mode = self.server.mode
        if mode == "error500":
            body = b'{"error": "boom: generation thread died"}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "not_sse":
            body = b'{"choices": [{"message": {"content": "hi"}}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "drop_chunked":
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = _event(_delta("Bon", role="assistant"))
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(_event(_delta("", role="assistant")))  # role-only first delta
        self.wfile.write(_event(_delta("Bon")))
        self.wfile.flush()
        if mode == "drop":
            return  # connection closed without [DONE]: an engine that died
        if mode == "stall":
            self._wait_for_hangup()
            return
        self.wfile.write(b": keep-alive comment\n\n")
        self.wfile.write(_event(_delta("jour")))
        usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        self.wfile.write(_event({"object": "chat.completion.chunk", "choices": [], "usage": usage}))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _wait_for_hangup(self) -> None:
        while not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    data = self.connection.recv(1)
                except OSError:
                    data = b""
                if not data:
                    self.server.disconnected.set()
                    return


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
async def provider(server: _Server) -> AsyncIterator[OpenAICompatProvider]:
    async with OpenAICompatProvider(server.base_url) as prov:
        yield prov


async def _collect(stream: AsyncIterator[StreamItem]) -> list[StreamItem]:
    return [item async for item in stream]


async def test_streams_deltas_then_usage(provider: OpenAICompatProvider) -> None:
    items = await _collect(provider.stream_chat(MESSAGES, model="m"))
    assert items == [TokenDelta("Bon"), TokenDelta("jour"), Usage(7, 2)]
    usage = items[-1]
    assert isinstance(usage, Usage) and usage.total == 9


async def test_request_has_content_length_and_exact_model(server: _Server) -> None:
    model = "/Users/me/models/SmolLM2 135M-Instruct@4bit"
    async with OpenAICompatProvider(server.base_url, api_key="sk-test") as provider:
        await _collect(provider.stream_chat(MESSAGES, model=model, max_tokens=64, temperature=0.2))
    headers, body = server.requests[-1]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["content-length"] == str(len(body))
    assert "transfer-encoding" not in lowered
    assert lowered["authorization"] == "Bearer sk-test"
    payload = json.loads(body)
    assert payload["model"] == model
    assert payload["messages"] == MESSAGES
    assert payload["stream"] is True
    assert payload["stream_options"] == {"include_usage": True}
    assert payload["max_tokens"] == 64
    assert payload["temperature"] == 0.2


async def test_http_500_is_upstream_error_with_body(
    server: _Server, provider: OpenAICompatProvider
) -> None:
    server.mode = "error500"
    with pytest.raises(LegalAssistantError) as info:
        await _collect(provider.stream_chat(MESSAGES, model="m"))
    assert info.value.code == "upstream_error"
    assert "500" in info.value.detail
    assert "generation thread died" in info.value.detail


async def test_non_sse_answer_is_upstream_error(
    server: _Server, provider: OpenAICompatProvider
) -> None:
    server.mode = "not_sse"
    with pytest.raises(LegalAssistantError) as info:
        await _collect(provider.stream_chat(MESSAGES, model="m"))
    assert info.value.code == "upstream_error"


async def test_connection_refused_is_provider_unavailable_fast() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    async with OpenAICompatProvider(base_url) as provider:
        with pytest.raises(LegalAssistantError) as info:
            await _collect(provider.stream_chat(MESSAGES, model="m"))
        assert info.value.code == "provider_unavailable"
        assert base_url in info.value.detail
        with pytest.raises(LegalAssistantError) as info:
            await provider.list_models()
        assert info.value.code == "provider_unavailable"
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("mode", ["drop", "drop_chunked"])
async def test_connection_closed_mid_stream_is_engine_crashed(
    server: _Server, provider: OpenAICompatProvider, mode: str
) -> None:
    server.mode = mode
    received: list[StreamItem] = []
    with pytest.raises(LegalAssistantError) as info:
        async for item in provider.stream_chat(MESSAGES, model="m"):
            received.append(item)
    assert info.value.code == "engine_crashed"
    assert received == [TokenDelta("Bon")]


async def test_cancellation_closes_upstream_connection(
    server: _Server, provider: OpenAICompatProvider
) -> None:
    server.mode = "stall"
    await consume_then_cancel(provider.stream_chat(MESSAGES, model="m"))
    assert await asyncio.to_thread(server.disconnected.wait, 5)


async def test_closing_the_iterator_closes_upstream_connection(
    server: _Server, provider: OpenAICompatProvider
) -> None:
    server.mode = "stall"
    async with contextlib.aclosing(provider.stream_chat(MESSAGES, model="m")) as stream:
        async for item in stream:
            assert item == TokenDelta("Bon")
            break
    assert await asyncio.to_thread(server.disconnected.wait, 5)


async def test_no_data_within_read_timeout_is_timeout(server: _Server) -> None:
    server.mode = "stall"
    async with OpenAICompatProvider(server.base_url, read_timeout=0.3) as provider:
        with pytest.raises(LegalAssistantError) as info:
            await _collect(provider.stream_chat(MESSAGES, model="m"))
    assert info.value.code == "timeout"


async def test_list_models(provider: OpenAICompatProvider) -> None:
    assert await provider.list_models() == ["a", "b/c"]


async def test_shared_client_is_left_open(server: _Server) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        provider = OpenAICompatProvider(server.base_url, client=client)
        await provider.aclose()
        assert not client.is_closed
        assert await provider.list_models() == ["a", "b/c"]
