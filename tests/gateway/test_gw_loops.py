"""Loops in the gateway (issue 20): `/v1`, `/v1/messages` and `/ollama/api` pass an engine's
stream through untouched, unless the client sends `X-Legal-Assistant-Stop-Loops: 1`; then
a looping stream ends with the protocol's normal end and the engine request is closed.

The fake engine (tests/fakes/fake_engine.py) stands in for a looping model: its answer
cycles over one 20-word sentence, exactly as a greedy small model repeats itself (the real
bundled model's loop is cut in tests/chat/test_loops_real.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from legal_assistant.api.loop_guard import STOP_LOOPS_HEADER
from legal_assistant.config import Settings

MESSAGES = [{"role": "user", "content": "Bonjour"}]
OPT_IN = {STOP_LOOPS_HEADER: "1"}
TOKENS = 200  # ten copies of the fake engine's sentence


async def _inflight(gw: Any, model_id: str) -> bool:
    engine = await gw.engine(model_id)
    return engine is not None and engine["inflight"] == 0


async def test_streams_pass_untouched_unless_the_client_opts_in(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    fake_engine_module: ModuleType,
) -> None:
    model_id = f"mlx:{fake_model('loop', tokens=TOKENS, token_rate=400)}"
    full = fake_engine_module.expected_text(TOKENS)
    body = {"model": model_id, "messages": MESSAGES, "stream": True}
    async with serve_gateway(gw_fake_settings()) as gw:

        async def openai_stream(headers: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
            async with gw.client.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers
            ) as resp:
                assert resp.status_code == 200
                datas = gw.sse_data([ln async for ln in resp.aiter_lines()])
            assert datas[-1] == "[DONE]"
            chunks = [json.loads(d) for d in datas[:-1]]
            text = "".join(
                c["choices"][0].get("delta", {}).get("content") or ""
                for c in chunks
                if c["choices"]
            )
            return text, chunks

        # Without the header: every byte of the loop, as the engine sent it.
        text, chunks = await openai_stream({})
        assert text == full
        assert not any("stopped" in c for c in chunks)

        # With it: cut within the third copy, ended by a normal finish chunk.
        text, chunks = await openai_stream(OPT_IN)
        assert full.startswith(text) and len(text) < len(full) // 3
        last = chunks[-1]
        assert last["stopped"] == "repetition"
        assert last["choices"][0]["finish_reason"] == "stop"
        await gw.poll(lambda: _inflight(gw, model_id), timeout=10, what="the request closed")

        # Anthropic Messages: a normal end (message_stop), the text cut.
        anthropic = {"model": model_id, "max_tokens": 1000, "messages": MESSAGES, "stream": True}
        async with gw.client.stream("POST", "/v1/messages", json=anthropic, headers=OPT_IN) as resp:
            assert resp.status_code == 200
            lines = [ln async for ln in resp.aiter_lines()]
        events = [ln[6:].strip() for ln in lines if ln.startswith("event:")]
        assert events[-1] == "message_stop"
        datas = [json.loads(d) for d in gw.sse_data(lines)]
        said = "".join(
            d["delta"].get("text", "") for d in datas if d.get("type") == "content_block_delta"
        )
        assert full.startswith(said) and len(said) < len(full) // 3

        # Ollama: the last line is `done: true`, the text cut.
        ollama = {"model": model_id, "messages": MESSAGES, "stream": True}
        async with gw.client.stream(
            "POST", "/ollama/api/chat", json=ollama, headers=OPT_IN
        ) as resp:
            assert resp.status_code == 200
            lines = [json.loads(ln) async for ln in resp.aiter_lines() if ln.strip()]
        assert lines[-1]["done"] is True
        said = "".join(ln.get("message", {}).get("content", "") for ln in lines)
        assert full.startswith(said.strip()) and len(said) < len(full) // 3
        # Without the header, the same request gets the whole answer.
        async with gw.client.stream("POST", "/ollama/api/chat", json=ollama) as resp:
            lines = [json.loads(ln) async for ln in resp.aiter_lines() if ln.strip()]
        assert "".join(ln.get("message", {}).get("content", "") for ln in lines) == full
