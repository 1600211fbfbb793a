"""Which models call tools, said to clients and enforced, on supervised engines (the fake
engine, a stand-in for mlx_lm.server, serving model directories whose chat template does
or does not have a tool-call format; with tools it answers like the scripted engine):

- tools for a model that cannot call them: a 400 at once in each protocol's own error
  shape, naming the model, and no engine started;
- a model that can: `capabilities` with `tools` and its context window in Ollama `show`;
  the bundled model's `tools: false` and window in `/v1/models` and `/api/models`;
- a cold start with tools in flight: Anthropic pings, then the tool_use block; Ollama's
  empty keep-alive lines, then the tool calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest

from legal_assistant.config import Settings

TOOLS = [{"name": "lire", "input_schema": {"type": "object"}}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": "lire", "parameters": {}}}]
ASK = [{"role": "user", "content": 'Lis.\ncall: lire {"chemin": "a.txt"}'}]
# Qwen 2.5's tool-call format, as mlx-lm recognises it (`<tool_call>` + tool_call.name).
TOOL_TEMPLATE = (
    "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}<tool_call>"
    "{{ tool_call.name }}</tool_call>{% endif %}"
)


def tooled(fake_model: Callable[..., Path], name: str, **knobs: Any) -> Path:
    path = fake_model(name, **knobs)
    config = {"model_type": "qwen2", "max_position_embeddings": 32768}
    (path / "config.json").write_text(json.dumps(config))
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": TOOL_TEMPLATE}))
    return path


async def test_tools_refused_at_once_for_a_model_without_tool_calling(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    tmp_path: Path,
) -> None:
    spawns = tmp_path / "spawns.log"
    plain = fake_model("plain", spawn_log=str(spawns))
    model = f"mlx:{plain}"
    async with serve_gateway(gw_fake_settings()) as gw:
        claude = anthropic.AsyncAnthropic(base_url=gw.url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.BadRequestError) as refused:
            await claude.messages.create(model=model, max_tokens=9, tools=TOOLS, messages=ASK)  # type: ignore[arg-type]
        body: Any = refused.value.body
        assert body["error"]["type"] == "invalid_request_error"
        assert f"{model} cannot call tools" in body["error"]["message"]
        with pytest.raises(anthropic.BadRequestError):
            await claude.messages.count_tokens(model=model, tools=TOOLS, messages=ASK)  # type: ignore[arg-type]

        with pytest.raises(openai.BadRequestError) as refused_v1:
            await gw.openai(max_retries=0).chat.completions.create(
                model=model,
                messages=ASK,
                tools=OPENAI_TOOLS,  # type: ignore[arg-type]
            )
        assert model in str(refused_v1.value)

        client = ollama.AsyncClient(host=f"{gw.url}/ollama", trust_env=False)
        with pytest.raises(ollama.ResponseError) as refused_ollama:
            await client.chat(model, ASK, tools=OPENAI_TOOLS)
        assert refused_ollama.value.status_code == 400
        assert f"{model} cannot call tools" in refused_ollama.value.error
        shown = await client.show(model)
        assert shown.capabilities == ["completion"]

        # Nothing was started; without tools the same model answers.
        assert not spawns.exists()
        plain_answer = await claude.messages.create(model=model, max_tokens=9, messages=ASK)
        assert plain_answer.stop_reason in ("end_turn", "max_tokens")

        listed = {m["id"]: m for m in (await gw.client.get("/v1/models")).json()["data"]}
        bundled = listed["mlx:smollm2-135m"]
        assert bundled["tools"] is False and bundled["context_length"] == 8192
        assert bundled["max_input_tokens"] == 8192 and bundled["type"] == "model"
        assert listed["llamacpp:smollm2-135m"]["context_length"] == gw.settings.llamacpp_n_ctx
        catalog = {m["id"]: m for m in (await gw.client.get("/api/models")).json()["models"]}
        assert catalog["mlx:smollm2-135m"]["tools"] is False
        # The same list read by the Anthropic SDK as its models list.
        page = await claude.models.list()
        assert "mlx:smollm2-135m" in [m.id for m in page.data]
        one = await claude.models.retrieve("mlx:smollm2-135m")
        assert one.id == "mlx:smollm2-135m" and one.display_name == bundled["label"]
        v1_one = await gw.openai().models.retrieve("llamacpp:smollm2-135m")
        assert v1_one.id == "llamacpp:smollm2-135m"
        missing = await gw.client.get("/v1/models/mlx:nobody/none")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


async def test_cold_engine_with_tools_in_flight(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
) -> None:
    model = f"mlx:{tooled(fake_model, 'tooled', start_delay=1.5)}"
    async with serve_gateway(gw_fake_settings(gateway_progress_comments=True)) as gw:
        client = ollama.AsyncClient(host=f"{gw.url}/ollama", trust_env=False)
        shown = await client.show(model)
        assert "tools" in (shown.capabilities or [])
        assert shown.modelinfo is not None and shown.modelinfo["qwen2.context_length"] == 32768

        body = {"model": model, "max_tokens": 50, "tools": TOOLS, "messages": ASK, "stream": True}
        async with gw.client.stream("POST", "/v1/messages", json=body) as r:
            assert r.status_code == 200
            raw = (await r.aread()).decode()
        events = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
        kinds = [e["type"] for e in events]
        first_block = kinds.index("content_block_start")
        assert kinds[0] == "message_start" and "ping" in kinds[1:first_block], kinds
        assert set(kinds[1:first_block]) == {"ping"}
        block = events[first_block]["content_block"]
        assert block["type"] == "tool_use" and block["name"] == "lire" and block["input"] == {}
        stop = next(e for e in events if e["type"] == "message_delta")
        assert stop["delta"]["stop_reason"] == "tool_use"

        unloaded = await client.generate(model, keep_alive=0)  # cold again, for Ollama
        assert unloaded.done_reason == "unload"
        lines = [p async for p in await client.chat(model, ASK, tools=OPENAI_TOOLS, stream=True)]
        calls = [p for p in lines if p.message.tool_calls]
        assert len(calls) == 1 and calls[0].message.tool_calls[0].function.arguments == {  # type: ignore[index]
            "chemin": "a.txt"
        }
        before = lines[: lines.index(calls[0])]
        assert before and all(p.message.content == "" and not p.done for p in before)

        # OpenAI: SSE comments while it starts (clients skip them), then the call deltas.
        await client.generate(model, keep_alive=0)
        body = {"model": model, "messages": ASK, "tools": OPENAI_TOOLS, "stream": True}
        status, _, raw_lines = await gw.stream_lines(body)
        assert status == 200
        assert raw_lines[0].startswith(":"), raw_lines[:3]
        chunks = [json.loads(d) for d in gw.sse_data(raw_lines) if d != "[DONE]"]
        deltas = [
            t for c in chunks for ch in c["choices"] for t in ch["delta"].get("tool_calls", [])
        ]
        assert deltas[0]["function"]["name"] == "lire"
        assert json.loads("".join(d["function"]["arguments"] for d in deltas)) == {
            "chemin": "a.txt"
        }
