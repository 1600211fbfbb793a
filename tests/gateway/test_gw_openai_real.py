"""The official `openai` client against the running app and the REAL bundled MLX model:
model list, chat (plain and streamed), text completions, and a model switch through the
gateway."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from legal_assistant.config import Settings

BUNDLED = "mlx:smollm2-135m"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


async def _chat_text(client: Any, model: str) -> str:
    resp = await client.chat.completions.create(
        model=model, messages=QUESTION, max_tokens=12, temperature=0
    )
    assert resp.choices[0].message.role == "assistant"
    return str(resp.choices[0].message.content)


async def test_openai_client_real_engine_chat_stream_completions_and_switch(
    serve_gateway: Callable[..., Any],
    gw_real_settings: Callable[..., Settings],
    bundled_model: Path,
    second_model: Path,
) -> None:
    async with serve_gateway(gw_real_settings()) as gw:
        client = gw.openai()
        try:
            # -- model list: the bundled model, with our extra `loaded` field
            listed = await client.models.list()
            by_id = {m.id: m for m in listed.data}
            assert BUNDLED in by_id, list(by_id)
            for m in listed.data:
                assert m.object == "model"
                assert isinstance((m.model_extra or {}).get("loaded"), bool), m
            assert by_id[BUNDLED].model_extra["loaded"] is False

            # -- non-streamed chat (cold: the gateway starts the engine)
            text = await _chat_text(client, BUNDLED)
            assert "Paris" in text, text

            listed = await client.models.list()
            assert {m.id: m for m in listed.data}[BUNDLED].model_extra["loaded"] is True

            # -- streamed chat
            stream = await client.chat.completions.create(
                model=BUNDLED, messages=QUESTION, max_tokens=12, temperature=0, stream=True
            )
            deltas: list[str] = []
            finish: list[str] = []
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        deltas.append(choice.delta.content)
                    if choice.finish_reason:
                        finish.append(choice.finish_reason)
            assert len(deltas) >= 2, deltas
            assert "Paris" in "".join(deltas), deltas
            assert finish and finish[-1] in ("stop", "length"), finish

            # -- text completions
            comp = await client.completions.create(
                model=BUNDLED, prompt="The capital of France is", max_tokens=8, temperature=0
            )
            assert comp.choices[0].text.strip(), comp
            assert comp.usage is None or comp.usage.completion_tokens >= 1

            first = await gw.engine(BUNDLED)
            assert first is not None and first["state"] == "ready"
            old_pid = first["pid"]
            assert old_pid is not None

            # -- switch to the second model (another path): the old engine goes away
            second_id = f"mlx:{second_model}"
            text = await _chat_text(client, second_id)
            assert "Paris" in text, text
            await gw.wait_pid_gone(old_pid, timeout=30)
            after = await gw.engine(BUNDLED)
            assert after is not None and after["state"] == "stopped" and after["pid"] is None
            now = await gw.engine(second_id)
            assert now is not None and now["state"] == "ready" and now["pid"] != old_pid
        finally:
            await client.close()
