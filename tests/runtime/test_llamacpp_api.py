"""`GET /api/engines/{id}/slots` on the real app and the real llama-server: what the engine
panel shows (busy / idle, cached tokens)."""

from __future__ import annotations

from pathlib import Path

from app_harness import make_settings, serve_app


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
