"""`GET /api/engines/{id}/slots` on the real app and the real llama-server: what the engine
panel shows (busy / idle, cached tokens)."""

from __future__ import annotations

from pathlib import Path

import httpx

from app_harness import make_settings, serve_app
from legal_assistant.engine_http import engine_client
from legal_assistant.runtime.state import EngineState


async def test_slots_view_after_a_chat(tmp_path: Path, models_dir: Path) -> None:
    settings = make_settings(tmp_path, models_dir, llamacpp_parallel=2)
    async with serve_app(settings) as app:
        turn = await app.chat(
            message="Bonjour", model_id="llamacpp:smollm2-135m", language="fr", max_tokens=8
        )
        assert turn.names[-1] == "done", turn.events
        [engine] = [e for e in (await app.get("/api/engines"))["engines"] if e["state"] == "ready"]
        view = await app.get(f"/api/engines/{engine['id']}/slots")
        assert view["engine"] == engine["id"] and len(view["slots"]) == 2
        assert all(s["busy"] is False and s["n_ctx"] == 4096 for s in view["slots"])
        # The chat's prompt (system prompt + message) is held by one slot: its cache.
        assert max(s["cached_tokens"] for s in view["slots"]) > 10
        missing = await app.client.get("/api/engines/llamacpp-999/slots")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_back_to_back_answers_never_meet_a_dropped_connection(
    tmp_path: Path, models_dir: Path
) -> None:
    """llama-server closes some kept-alive connections within ~2 ms of a streamed answer's
    end while advertising keep-alive (measured: 3-6 of 30 back-to-back streams on a plain
    httpx client fail with "Server disconnected without sending a response"). The client
    the chat, the gateway and the embedder share must still get every answer."""
    settings = make_settings(tmp_path, models_dir)
    async with serve_app(settings) as app:
        turn = await app.chat(message="Bonjour", model_id="llamacpp:smollm2-135m", max_tokens=4)
        assert turn.names[-1] == "done", turn.events
        [engine] = [e for e in app.state.supervisor.engines() if e.state is EngineState.READY]
        body = {
            "model": engine.served_model,
            "messages": [{"role": "user", "content": "Bonjour"}],
            "max_tokens": 4,
            "stream": True,
        }
        failures = []
        async with engine_client(timeout=60) as client:
            for i in range(40):  # no gap: the next request goes out as the answer ends
                url = f"{engine.base_url}/v1/chat/completions"
                try:
                    async with client.stream("POST", url, json=body) as resp:
                        text = (await resp.aread()).decode()
                    assert resp.status_code == 200 and "[DONE]" in text, text
                except httpx.TransportError as e:
                    failures.append(f"request {i}: {type(e).__name__}: {e}")
        assert failures == []
