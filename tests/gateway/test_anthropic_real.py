"""The official `anthropic` SDK against the running app and the REAL bundled MLX engine:
20 concurrent streams on a cold model (one engine start, 20 complete answers), create,
stream, count_tokens (the engine's own count), error shapes for an unknown model and an
image block, and a model switch that waits for the stream in progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest

from legal_assistant.config import Settings

BUNDLED = "mlx:smollm2-135m"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0.0}  # this SDK takes sampling fields as extra body fields


def sdk(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=url,
        api_key="unused",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False, timeout=180),
    )


async def test_anthropic_sdk_on_the_real_engine(
    serve_gateway: Callable[..., Any],
    gw_real_settings: Callable[..., Settings],
    bundled_model: Path,
    second_model: Path,
) -> None:
    async with serve_gateway(gw_real_settings()) as gw:
        client = sdk(gw.url)
        try:
            # -- 20 concurrent streams while the model is cold: one start, 20 answers.
            async def one() -> tuple[str, anthropic.types.Message]:
                async with client.messages.stream(
                    model=BUNDLED, max_tokens=8, messages=QUESTION, extra_body=GREEDY
                ) as stream:
                    text = "".join([t async for t in stream.text_stream])
                    return text, await stream.get_final_message()

            results = await asyncio.gather(*(one() for _ in range(20)))
            for text, final in results:
                assert text.strip(), results
                assert final.content[0].type == "text" and final.content[0].text == text
                assert final.stop_reason in ("end_turn", "max_tokens")
                assert 1 <= final.usage.output_tokens <= 8 and final.usage.input_tokens > 5
            engine = await gw.engine(BUNDLED)
            assert engine is not None and engine["starts"] == 1 and engine["state"] == "ready"

            # -- create
            msg = await client.messages.create(
                model=BUNDLED, max_tokens=12, messages=QUESTION, extra_body=GREEDY
            )
            assert msg.type == "message" and msg.role == "assistant" and msg.model == BUNDLED
            assert "Paris" in msg.content[0].text, msg  # type: ignore[union-attr]
            assert msg.stop_reason in ("end_turn", "max_tokens")

            # -- stream (text_stream), the same greedy answer
            async with client.messages.stream(
                model=BUNDLED, max_tokens=12, messages=QUESTION, extra_body=GREEDY
            ) as stream:
                parts = [t async for t in stream.text_stream]
            assert len(parts) >= 2 and "".join(parts) == msg.content[0].text  # type: ignore[union-attr]

            # -- count_tokens: what the engine counted for the same prompt
            counted = await client.messages.count_tokens(model=BUNDLED, messages=QUESTION)
            assert counted.input_tokens == msg.usage.input_tokens

            # -- error shapes
            with pytest.raises(anthropic.NotFoundError) as missing:
                await client.messages.create(
                    model="mlx:nobody/none", max_tokens=5, messages=QUESTION
                )
            assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
            image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": "iVBORw0KGgo="}}  # fmt: skip
            with pytest.raises(anthropic.BadRequestError) as refused:
                await client.messages.create(
                    model=BUNDLED,
                    max_tokens=5,
                    messages=[{"role": "user", "content": [image, {"type": "text", "text": "?"}]}],
                )
            assert refused.value.body["type"] == "error"  # type: ignore[index]
            assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
            assert "image" in refused.value.message

            # -- a switch requested during a stream waits for it
            second = f"mlx:{second_model}"
            old_pid = engine["pid"]
            first_text = asyncio.Event()
            streamed: list[str] = []
            ended = 0.0

            async def long_stream() -> anthropic.types.Message:
                nonlocal ended
                async with client.messages.stream(
                    model=BUNDLED, max_tokens=40, messages=QUESTION, extra_body=GREEDY
                ) as stream:
                    async for t in stream.text_stream:
                        streamed.append(t)
                        first_text.set()
                    final = await stream.get_final_message()
                ended = time.monotonic()
                return final

            task = asyncio.create_task(long_stream())
            await asyncio.wait_for(first_text.wait(), 120)
            switched = await client.messages.create(
                model=second, max_tokens=12, messages=QUESTION, extra_body=GREEDY
            )
            switched_at = time.monotonic()
            final = await asyncio.wait_for(task, 120)
            assert ended <= switched_at
            assert final.stop_reason in ("end_turn", "max_tokens")
            assert final.content[0].text == "".join(streamed) and len(streamed) >= 5  # type: ignore[union-attr]
            assert "Paris" in switched.content[0].text  # type: ignore[union-attr]
            await gw.wait_pid_gone(old_pid)
            now = await gw.engine(second)
            assert now is not None and now["state"] == "ready"
        finally:
            await client.close()
