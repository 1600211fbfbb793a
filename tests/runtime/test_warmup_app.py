"""Warm-ups in the running app (real uvicorn, real `mlx_lm.server`, real SurrealDB): the
default model at start-up unless WARM_DEFAULT=false, and `POST /api/engines/start` with
`"warm": true`, which returns at once while the engine starts and prefills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app_harness import RunningApp, make_settings, poll, serve_app
from legal_assistant.runtime.warmup import Warmer, warm_messages

BUNDLED = "mlx:smollm2-135m"
START = 120.0  # a cold start on a loaded 2-core machine, generously


def warmer(app: RunningApp) -> Warmer:
    w: Warmer = app.app.state.warmer
    return w


async def warmed(app: RunningApp, model: str = BUNDLED) -> dict[str, Any]:
    """Wait for the engine to be ready and the warm-up to be over; its status."""
    engine: dict[str, Any] = await poll(
        lambda: _ready(app, model), timeout=START, interval=0.1, what=f"{model} ready"
    )
    await poll(lambda: not warmer(app).warming(model), timeout=START, what="warm-up done")
    return engine


async def _ready(app: RunningApp, model: str) -> dict[str, Any] | None:
    engine = await app.engine(model)
    return engine if engine and engine["state"] == "ready" else None


async def cached_tokens(engine: dict[str, Any], question: str) -> int:
    """Ask the engine directly in the chat turn's format; the prompt tokens it reused."""
    body = {
        "model": engine["served_model"],
        "messages": [warm_messages("fr")[0], {"role": "user", "content": question}],
        "max_tokens": 1,
        "temperature": 0.0,
    }
    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
        resp = await client.post(f"{engine['url']}/chat/completions", json=body)
    resp.raise_for_status()
    return int(resp.json()["usage"]["prompt_tokens_details"]["cached_tokens"])


async def test_serve_warms_the_default_model_while_the_api_answers(
    tmp_path: Path, models_dir: Path, bundled_model: Path
) -> None:
    settings = make_settings(tmp_path, models_dir, warm_default=True)
    async with serve_app(settings) as app:
        # Start-up did not wait for the engine: the API is up while the warm-up runs.
        assert warmer(app).warming(BUNDLED)
        assert (await app.get("/healthz"))["status"] == "ok"
        engine = await warmed(app)
        assert engine["starts"] == 1
        # The system prompt is in the engine's prompt cache before anyone asked.
        assert await cached_tokens(engine, "Qu'est-ce qu'un bail ?") > 40
        turn = await app.chat(message="Bonjour", max_tokens=4)
        assert turn.names[-1] == "done"
        assert turn.statuses == []  # nothing left to start


async def test_warm_default_false_starts_nothing(
    tmp_path: Path, models_dir: Path, bundled_model: Path
) -> None:
    settings = make_settings(tmp_path, models_dir, warm_default=False)
    async with serve_app(settings) as app:
        assert not warmer(app).warming(BUNDLED)
        assert await app.engines() == []


async def test_warm_start_returns_at_once_and_a_chat_sent_meanwhile_joins_it(
    tmp_path: Path, models_dir: Path, bundled_model: Path
) -> None:
    settings = make_settings(tmp_path, models_dir, warm_default=False)
    async with serve_app(settings) as app:
        resp = await app.client.post(
            "/api/engines/start", json={"model_id": BUNDLED, "warm": True, "language": "fr"}
        )
        assert resp.status_code == 202, resp.text
        body = resp.json()
        assert body["model"] == BUNDLED and body["warming"] is True
        assert body["engine"] is None or body["engine"]["state"] != "ready"
        # Sent before the engine is ready: the turn joins the start (no second start).
        turn = await app.chat(message="Bonjour", max_tokens=4)
        assert turn.names[-1] == "done", turn.events
        engine = await warmed(app)
        assert engine["starts"] == 1

        # Picking it again: the engine is up, the warm-up only prefills.
        again = await app.client.post(
            "/api/engines/start", json={"model_id": BUNDLED, "warm": True}
        )
        assert again.status_code == 202
        assert again.json()["engine"]["state"] == "ready"
        engine = await warmed(app)
        assert engine["starts"] == 1


async def test_warm_start_refuses_bad_input_at_once(tmp_path: Path, models_dir: Path) -> None:
    settings = make_settings(tmp_path, models_dir, warm_default=False)
    async with serve_app(settings) as app:
        for model_id, code in (
            ("mlx:../etc", "invalid_model_id"),
            ("ollama:llama3", "bad_request"),
            ("nope:x", "unknown_provider"),
        ):
            resp = await app.client.post(
                "/api/engines/start", json={"model_id": model_id, "warm": True}
            )
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["code"] == code
        resp = await app.client.post(
            "/api/engines/start", json={"model_id": BUNDLED, "warm": "yes please"}
        )
        assert resp.status_code == 400
        assert await app.engines() == []
