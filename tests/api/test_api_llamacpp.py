"""A chat turn over HTTP on the real llama.cpp engine with the bundled GGUF."""

from __future__ import annotations

from pathlib import Path

from app_harness import make_settings, serve_app


async def test_chat_with_llamacpp_over_http(tmp_path: Path, models_dir: Path) -> None:
    settings = make_settings(tmp_path, models_dir)
    async with serve_app(settings) as app:
        turn = await app.chat(
            message="Bonjour", model_id="llamacpp:smollm2-135m", language="fr", max_tokens=12
        )
        assert turn.names[-1] == "done", turn.events
        messages = [s["message"] for s in turn.statuses]
        assert messages[0] == "🦙 Démarrage du serveur llama.cpp..."
        assert messages[-1] == "✅ Serveur llama.cpp prêt"
        assert turn.text
        done = turn.one("done")
        assert done["provider"] == "llamacpp" and done["timings"]["ttft_s"] is not None
        engines = (await app.get("/api/engines"))["engines"]
        assert [e["kind"] for e in engines if e["state"] == "ready"] == ["llamacpp"]
