"""A ready engine that stops answering, a client that leaves a non-streamed request, and a
bug in a turn (issue 11, items 7 and 9). The fake engine stands in for an mlx_lm.server
whose generation hangs (`hang_after_tokens`): the real one cannot be made to hang on cue.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from reliability_helpers import fake_app_settings, serve_app

from app_harness import chat, fake_model_dir, poll
from legal_assistant.providers.openai_compat import OpenAICompatProvider

READ_TIMEOUT = 1.5


async def test_a_hung_ready_engine_is_wedged_released_and_restarted(tmp_path: Path) -> None:
    path = fake_model_dir(tmp_path, "hangs", hang_after_tokens=2, tokens=8)
    model = f"mlx:{path}"
    settings = fake_app_settings(tmp_path, engine_read_timeout_s=READ_TIMEOUT)
    async with asyncio.timeout(90), serve_app(settings) as app:
        turn = await chat(app.client, message="Bonjour", model_id=model, timeout=30)
        assert turn.names[-1] == "error", turn.events
        err = turn.one("error")
        assert err["code"] == "engine_wedged" and err["partial"] is True, err
        answer = (await app.conversation(turn.conversation_id))["messages"][-1]
        assert answer["partial"] is True and answer["content"] == turn.text
        engine = await app.engine(model)
        assert engine is not None and engine["inflight"] == 0  # the lease is back
        old_pid = engine["pid"]

        async def failed() -> bool:
            e = await app.engine(model)
            return e is not None and e["state"] == "failed" and e["pid"] is None

        await poll(failed, timeout=10, what="the wedged engine failed and reaped")

        # The gateway: non-streamed → 503 engine_wedged; streamed → an error event.
        resp = await app.client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
        )
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "engine_wedged"
        async with app.client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]},
        ) as stream:
            body = (await stream.aread()).decode()
        errors = [
            json.loads(line[6:])
            for line in body.splitlines()
            if line.startswith("data: {") and "error" in line
        ]
        assert errors and errors[-1]["error"]["code"] == "engine_wedged", body

        # Fixed: the next request restarts it and is served by a new process.
        fake_model_dir(tmp_path, "hangs", tokens=3)
        turn = await chat(app.client, message="Encore", model_id=model, timeout=30)
        assert turn.names[-1] == "done", turn.events
        engine = await app.engine(model)
        assert engine is not None and engine["state"] == "ready"
        assert engine["pid"] not in (None, old_pid)


async def test_a_non_streamed_gateway_request_notices_its_client_leaving(
    tmp_path: Path,
) -> None:
    path = fake_model_dir(tmp_path, "slow", tokens=400, token_rate=20)  # a 20 s answer
    model = f"mlx:{path}"
    async with asyncio.timeout(60), serve_app(fake_app_settings(tmp_path)) as app:
        await app.client.post("/api/engines/start", json={"model_id": model})

        # A raw connection, so that "the client hangs up" is exactly a closed socket.
        host, port = app.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]})
        writer.write(
            (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
        await writer.drain()

        async def answering() -> bool:
            e = await app.engine(model)
            return e is not None and e["inflight"] == 1

        await poll(answering, timeout=10, what="the request on the engine")
        writer.close()  # the client hangs up long before the answer is complete
        await writer.wait_closed()
        assert not await reader.read()  # nothing was answered

        async def released() -> bool:
            e = await app.engine(model)
            return e is not None and e["inflight"] == 0

        await poll(released, timeout=5, what="the lease released after the client left")


async def test_an_unexpected_error_in_a_turn_ends_with_an_error_event_and_keeps_the_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = OpenAICompatProvider.stream_chat

    async def buggy(self: OpenAICompatProvider, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        n = 0
        async for item in original(self, *args, **kwargs):  # type: ignore[arg-type]
            yield item
            n += 1
            if n == 2:
                raise RuntimeError("a bug in the provider")

    monkeypatch.setattr(OpenAICompatProvider, "stream_chat", buggy)
    path = fake_model_dir(tmp_path, "ok", tokens=8)
    model = f"mlx:{path}"
    async with asyncio.timeout(60), serve_app(fake_app_settings(tmp_path)) as app:
        turn = await chat(app.client, message="Bonjour", model_id=model, timeout=30)
        assert turn.names[-1] == "error", turn.events
        err = turn.one("error")
        assert err["code"] == "internal_error" and err["partial"] is True, err
        assert "Traceback" not in json.dumps(err)
        answer = (await app.conversation(turn.conversation_id))["messages"][-1]
        assert answer["partial"] is True and answer["content"] == turn.text != ""
        engine = await app.engine(model)
        assert engine is not None and engine["inflight"] == 0 and engine["state"] == "ready"


async def test_an_unexpected_error_on_the_gateway_is_a_json_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legal_assistant.api.routes import openai_gateway

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the gateway")

    monkeypatch.setattr(openai_gateway, "_parse_body", broken)
    async with asyncio.timeout(60), serve_app(fake_app_settings(tmp_path)) as app:
        resp = await app.client.post("/v1/chat/completions", json={"model": "mlx:x"})
        assert resp.status_code == 500
        assert resp.json()["error"]["code"] == "internal_error"
        assert isinstance(resp, httpx.Response) and "Traceback" not in resp.text
