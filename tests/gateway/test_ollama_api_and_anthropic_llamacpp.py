"""Both translated protocols once on the REAL llama.cpp engine (`llama-server` with the
bundled GGUF, built by `legal-assistant engines install llamacpp`, launched with
`--jinja`): the official `anthropic` SDK (create, stream, count_tokens) and `ollama`
client (chat streamed and not, generate) reach the same supervised engine, started once.
Tools for this model (its template has none) are refused at once, nothing started."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import ollama
import psutil
import pytest

from legal_assistant.config import Settings
from legal_assistant.runtime.installer import INSTALL_HINT, is_installed

MODEL = "llamacpp:smollm2-135m"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


async def test_anthropic_and_ollama_clients_on_llamacpp(
    serve_gateway: Callable[..., Any],
    gw_real_settings: Callable[..., Settings],
    bundled_model: Path,
) -> None:
    settings = gw_real_settings()
    assert is_installed(settings.engines_dir, "llamacpp"), f"llama-server missing: {INSTALL_HINT}"
    async with serve_gateway(settings) as gw:
        claude = anthropic.AsyncAnthropic(
            base_url=gw.url,
            api_key="unused",
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False, timeout=180),
        )
        try:
            with pytest.raises(anthropic.BadRequestError) as refused:
                await claude.messages.create(
                    model=MODEL,
                    max_tokens=12,
                    messages=QUESTION,
                    tools=[{"name": "lire", "input_schema": {"type": "object"}}],
                )
            assert f"{MODEL} cannot call tools" in refused.value.message
            assert await gw.engine(MODEL) is None
            msg = await claude.messages.create(
                model=MODEL, max_tokens=12, messages=QUESTION, extra_body={"temperature": 0.0}
            )
            # Whatever the small model says (llama.cpp's template makes it wander): text.
            assert msg.content[0].text.strip(), msg  # type: ignore[union-attr]
            assert msg.usage.input_tokens > 5 and 1 <= msg.usage.output_tokens <= 12
            async with claude.messages.stream(
                model=MODEL, max_tokens=12, messages=QUESTION, extra_body={"temperature": 0.0}
            ) as stream:
                parts = [t async for t in stream.text_stream]
                final = await stream.get_final_message()
            assert len(parts) >= 2 and "".join(parts).strip(), parts
            assert final.usage.input_tokens == msg.usage.input_tokens
            counted = await claude.messages.count_tokens(model=MODEL, messages=QUESTION)
            assert counted.input_tokens == msg.usage.input_tokens
        finally:
            await claude.close()

        oc = ollama.AsyncClient(host=f"{gw.url}/ollama", trust_env=False, timeout=180)
        options = {"temperature": 0.0, "num_predict": 12}
        reply = await oc.chat(model="smollm2-135m:llamacpp", messages=QUESTION, options=options)
        assert (reply.message.content or "").strip(), reply
        assert reply.done_reason in ("stop", "length") and reply.eval_count
        stream = await oc.chat(model=MODEL, messages=QUESTION, options=options, stream=True)
        lines = [part async for part in stream]
        assert "".join(p.message.content or "" for p in lines).strip(), lines
        assert lines[-1].done and lines[-1].eval_count
        gen = await oc.generate(model=MODEL, prompt="The capital of France is", options=options)
        assert gen.response and gen.done
        assert [m.model for m in (await oc.ps()).models] == ["smollm2-135m:llamacpp"]
        engine = await gw.engine(MODEL)
        assert engine is not None and engine["kind"] == "llamacpp" and engine["starts"] == 1
        assert "--jinja" in psutil.Process(engine["pid"]).cmdline()
