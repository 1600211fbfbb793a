"""`engine_client` resends a request the server dropped before answering, once.

The server here is a real asyncio TCP server speaking HTTP/1.1 keep-alive; it stands in for
llama-server's habit of closing a kept-alive connection right after a streamed answer
(the real engine is in `tests/runtime/test_llamacpp_api.py`). Each behaviour is set by how
many requests a connection answers before it is closed without a response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from legal_assistant.engine_http import RetryDroppedRequest, engine_client


class DroppingServer:
    """Answers `answered` requests per connection, then reads the next one and closes."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.requests = 0  # every request read, answered or dropped
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length)
                self.requests += 1
                if served >= self.answered:
                    return  # dropped: closed with no status line
                served += 1
                reply = b"echo:" + body
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=5, "
                    b"max=100\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[DroppingServer]:
    fake = DroppingServer(answered=request.param)
    srv = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield fake


@pytest.mark.parametrize("server", [1], indirect=True)
async def test_a_request_dropped_on_a_reused_connection_is_resent_once(
    server: DroppingServer,
) -> None:
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    async with engine_client() as client:
        answers = [(await client.post(url, content=f"q{i}".encode())).text for i in range(6)]
    assert answers == [f"echo:q{i}" for i in range(6)]
    # Every second request met a connection that was about to be closed: read, dropped,
    # and answered on a fresh connection.
    assert server.requests == 11 and server.connections == 6


@pytest.mark.parametrize("server", [0], indirect=True)
async def test_a_server_that_never_answers_gets_two_tries_and_the_first_error(
    server: DroppingServer,
) -> None:
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    async with engine_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post(url, content=b"q")
    assert server.requests == 2


@pytest.mark.parametrize("server", [0], indirect=True)
async def test_a_streamed_request_body_is_never_resent(server: DroppingServer) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"q"

    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    async with engine_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=body(), headers={"Content-Length": "1"})
    assert server.requests == 1


async def test_an_engine_gone_mid_request_keeps_its_own_error() -> None:
    """The retry meets a closed port ("cannot connect"); the caller still sees the drop."""
    dropped = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        dropped.set()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]

    class StopAfterDrop(httpx.AsyncBaseTransport):
        """Closes the server between the drop and the retry, as a crashed engine would."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if dropped.is_set():
                srv.close()
                await srv.wait_closed()
            return await self.inner.handle_async_request(request)

    async with httpx.AsyncClient(transport=RetryDroppedRequest(StopAfterDrop())) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"http://127.0.0.1:{port}/", content=b"q")


@pytest.mark.parametrize(
    ("host", "attempts"),
    [("127.0.0.1", 2), ("localhost", 2), ("[::1]", 2), ("api.example.com", 1), ("10.0.0.5", 1)],
)
async def test_only_loopback_engines_get_the_resend(host: str, attempts: int) -> None:
    """A remote endpoint that dropped a request may have run it (and billed it): no resend.
    The inner transport stands in for a server that always drops the request."""

    class AlwaysDrops(httpx.AsyncBaseTransport):
        calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.calls += 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    inner = AlwaysDrops()
    async with httpx.AsyncClient(transport=RetryDroppedRequest(inner)) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"http://{host}:8080/v1/chat/completions", content=b"q")
    assert inner.calls == attempts
