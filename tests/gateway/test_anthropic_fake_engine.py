"""`/v1/messages` over real HTTP with the fake engine (a stand-in for mlx_lm.server with a
known answer and a controllable start): the event sequence, `ping` while a cold engine
starts, stop sequences cut by the gateway, `max_tokens`, usage, admission (429), the API
key as `x-api-key`, and the metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anthropic
import pytest

from legal_assistant.config import Settings

MESSAGES = [{"role": "user", "content": "Bonjour"}]


def body(model: Path, **extra: Any) -> dict[str, Any]:
    return {"model": f"mlx:{model}", "max_tokens": 64, "messages": MESSAGES, **extra}


def parse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of an Anthropic event stream."""
    events = []
    for block in raw.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        name = next(ln[6:].strip() for ln in lines if ln.startswith("event:"))
        data = json.loads("".join(ln[5:].strip() for ln in lines if ln.startswith("data:")))
        assert data["type"] == name, block
        events.append((name, data))
    return events


def sdk(url: str, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=url,
        api_key=kw.pop("api_key", "unused"),
        http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False, timeout=120),
        **kw,
    )


async def test_cold_stream_pings_then_the_full_event_sequence(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    fake_engine_module: ModuleType,
) -> None:
    model = fake_model("cold", start_delay=2.5, tokens=6)
    expected = fake_engine_module.expected_text(6)
    async with serve_gateway(gw_fake_settings()) as gw:
        async with gw.client.stream("POST", "/v1/messages", json=body(model, stream=True)) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = parse_events((await r.aread()).decode())
        names = [n for n, _ in events]
        assert names[:2] == ["message_start", "content_block_start"], names
        first_delta = names.index("content_block_delta")
        # While the engine started: pings only, nothing a client renders.
        assert set(names[2:first_delta]) == {"ping"}, names
        assert names[first_delta:].count("ping") == 0
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"], names
        start = events[0][1]["message"]
        assert start["role"] == "assistant" and start["model"] == f"mlx:{model}"
        assert start["id"].startswith("msg_") and start["content"] == []
        text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
        assert text == expected
        delta = events[-2][1]
        assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
        assert delta["usage"] == {"input_tokens": 1, "output_tokens": 6}

        # Warm, with the SDK: the same answer, and no ping at all.
        client = sdk(gw.url)
        try:
            async with client.messages.stream(**body(model)) as stream:
                parts = [t async for t in stream.text_stream]
                final = await stream.get_final_message()
        finally:
            await client.close()
        assert "".join(parts) == expected
        assert final.stop_reason == "end_turn" and final.usage.output_tokens == 6
        async with gw.client.stream("POST", "/v1/messages", json=body(model, stream=True)) as r:
            warm = [n for n, _ in parse_events((await r.aread()).decode())]
        assert "ping" not in warm, warm


async def test_stop_sequences_max_tokens_and_plain_messages(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    fake_engine_module: ModuleType,
) -> None:
    model = fake_model("words", tokens=12, token_rate=0)
    full = fake_engine_module.expected_text(12)
    async with serve_gateway(gw_fake_settings()) as gw:
        client = sdk(gw.url)
        try:
            # "Code" starts in the 5th token: the answer is cut before it, streamed or not.
            cut = full[: full.index(" Code")]
            msg = await client.messages.create(**body(model, stop_sequences=[" Code", "zzz"]))
            assert msg.content[0].type == "text" and msg.content[0].text == cut
            assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == " Code"
            async with client.messages.stream(**body(model, stop_sequences=[" Code"])) as s:
                streamed = "".join([t async for t in s.text_stream])
                final = await s.get_final_message()
            assert streamed == cut
            assert final.stop_reason == "stop_sequence" and final.stop_sequence == " Code"

            # A stop sequence that never comes: everything, end_turn.
            msg = await client.messages.create(**body(model, stop_sequences=["nowhere"]))
            assert msg.content[0].text == full and msg.stop_reason == "end_turn"
            assert msg.usage.output_tokens == 12 and msg.usage.input_tokens == 1

            msg = await client.messages.create(**{**body(model), "max_tokens": 3})
            assert msg.content[0].text == fake_engine_module.expected_text(3)
            assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 3

            msg = await client.messages.create(
                **body(model),
                system=[{"type": "text", "text": "Tu es juriste."}],
                # This SDK version takes the sampling fields only as extra body fields.
                extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 20},
            )
            assert msg.content[0].text == full
            # The fake counts prompt words: system + user message.
            assert msg.usage.input_tokens == 4
        finally:
            await client.close()
        metrics = await gw.metrics()
        assert (
            'legal_assistant_gateway_request_duration_seconds_count{route="messages",status="200"}'
            in metrics
        )


async def test_refusals_have_anthropic_error_shapes(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = fake_model("slow", token_rate=5, tokens=6)
    settings = gw_fake_settings(max_inflight_per_engine=1, max_queue_per_engine=1, api_key="k")
    async with serve_gateway(settings) as gw:
        client = sdk(gw.url, api_key="k", max_retries=0)
        try:
            with pytest.raises(anthropic.AuthenticationError) as auth:
                await sdk(gw.url, api_key="wrong", max_retries=0).messages.create(**body(model))
            assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
            with pytest.raises(anthropic.NotFoundError) as missing:
                await client.messages.create(**{**body(model), "model": "mlx:nobody/none"})
            assert missing.value.body["type"] == "error"  # type: ignore[index]
            assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
            with pytest.raises(anthropic.BadRequestError) as bad:
                await client.messages.create(
                    **{
                        **body(model),
                        "messages": [
                            {
                                "role": "user",
                                "content": [
                                    {
                                        "type": "tool_result",
                                        "tool_use_id": "x",
                                        "content": [{"type": "image", "source": {}}],
                                    }
                                ],
                            }
                        ],
                    }
                )
            assert "image" in bad.value.message
            # Bearer works too (the same key as the rest of the API).
            resp = await gw.client.post(
                "/v1/messages/count_tokens",
                json={"model": f"mlx:{model}", "messages": MESSAGES},
                headers={"Authorization": "Bearer k"},
            )
            assert resp.status_code == 200 and resp.json() == {"input_tokens": 1}, resp.text

            # Admission: one running, one queued, the third refused with rate_limit_error.
            async def one() -> int:
                r = await gw.client.post(
                    "/v1/messages", json=body(model), headers={"x-api-key": "k"}
                )
                if r.status_code == 429:
                    assert r.json()["error"]["type"] == "rate_limit_error"
                    assert int(r.headers["retry-after"]) >= 1
                return r.status_code

            codes = await asyncio.gather(one(), one(), one())
            assert sorted(codes) == [200, 200, 429], codes
        finally:
            await client.close()
        assert gw.state.admission.load(f"mlx:{model}") == (0, 0)
