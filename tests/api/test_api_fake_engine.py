"""Chat turns whose engine misbehaves on cue (tests/fakes/fake_engine.py as the MLX
command): a client that leaves mid-answer, an engine that dies mid-answer, the live
engine event stream, and a second backend on the same data directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from app_harness import (
    RunningApp,
    fake_engine_command,
    fake_model_dir,
    iter_events,
    load_fake,
    make_settings,
    pid_gone,
    poll,
    serve_app,
)
from legal_assistant.api.app import create_app
from legal_assistant.errors import LegalAssistantError

pytestmark = pytest.mark.asyncio(loop_scope="module")

fake_engine = load_fake("fake_engine")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-fake")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(root: Path) -> AsyncIterator[RunningApp]:
    settings = make_settings(
        root,
        root / "models",
        mlx_command=fake_engine_command(),
        load_timeout_s=10.0,
        drain_timeout_s=10.0,
        stop_grace_s=1.0,
    )
    async with serve_app(settings) as running:
        yield running


def fake_model(root: Path, name: str, **knobs: Any) -> str:
    """A model directory the fake engine serves with these knobs; returns its model id."""
    return f"mlx:{fake_model_dir(root, name, **knobs)}"


async def engine_status(app: RunningApp, model_id: str) -> dict[str, Any]:
    engines = (await app.get("/api/engines"))["engines"]
    found = [e for e in engines if e["model"] == model_id]
    assert len(found) == 1, engines
    return found[0]


async def test_client_leaving_mid_answer_keeps_the_partial_answer(
    app: RunningApp, root: Path
) -> None:
    model = fake_model(root, "slow", token_rate=10, tokens=200)
    tokens: list[str] = []
    meta: dict[str, Any] = {}
    async with app.client.stream(
        "POST", "/api/chat/stream", json={"message": "Bonjour", "model_id": model}
    ) as resp:
        assert resp.status_code == 200
        async for event, data in iter_events(resp):
            if event == "meta":
                meta = data
            elif event == "token":
                tokens.append(data["content"])
                if len(tokens) == 3:
                    break
            else:
                assert event == "status", (event, data)
    # Leaving the block closed the connection, 3 tokens into a 20 s answer.
    conversation_id = meta["conversation_id"]

    async def partial_answer() -> dict[str, Any] | None:
        conv = await app.conversation(conversation_id)
        answers = [m for m in conv["messages"] if m["role"] == "assistant"]
        return answers[0] if answers else None

    answer = await poll(partial_answer, timeout=15, what="the partial answer to be saved")
    full = fake_engine.expected_text(200)
    assert answer["partial"] is True and answer["error_code"] == "cancelled"
    assert answer["content"] and full.startswith(answer["content"])
    assert answer["content"].startswith("".join(tokens))
    assert len(answer["content"]) < len(full)  # generation stopped with the client

    async def idle() -> bool:
        status = await engine_status(app, model)
        return status["inflight"] == 0 and status["state"] == "ready"

    await poll(idle, timeout=15, what="the engine lease to be released")
    turn = await app.chat(message="Encore", model_id=model, max_tokens=3)
    assert turn.names[-1] == "done", turn.events
    assert turn.statuses == []  # same engine, still healthy
    assert turn.text == fake_engine.expected_text(3)
    assert (await engine_status(app, model))["inflight"] == 0


async def test_engine_dying_mid_answer_is_reported_then_restarted(
    app: RunningApp, root: Path
) -> None:
    model = fake_model(root, "crashy", crash_after_tokens=3, token_rate=50)
    turn = await app.chat(message="Bonjour", model_id=model, max_tokens=10)
    assert turn.names[-1] == "error", turn.events
    error = turn.one("error")
    assert error["code"] == "engine_crashed", error
    assert error["partial"] is True
    assert error["message"] == "❌ Le serveur du modèle s'est arrêté de façon inattendue."
    assert len(turn.all("token")) == 3

    conv = await app.conversation(turn.conversation_id)
    user, answer = conv["messages"]
    assert user["content"] == "Bonjour"
    assert answer["id"] == error["message_id"]
    assert answer["partial"] is True and answer["error_code"] == "engine_crashed"
    assert answer["content"] == turn.text == fake_engine.expected_text(3)

    # The next turn finds the engine dead and starts a new one (max_tokens below the
    # crash threshold, so this one answers in full).
    again = await app.chat(
        message="Encore", model_id=model, max_tokens=2, conversation_id=turn.conversation_id
    )
    assert again.names[-1] == "done", again.events
    phases = [s["phase"] for s in again.statuses]
    assert phases[0] == "starting" and phases[-1] == "ready", phases
    assert again.text == fake_engine.expected_text(2)
    status = await engine_status(app, model)
    assert status["state"] == "ready" and status["starts"] == 2
    # A failed answer is not sent back to the model as history.
    conv = await app.conversation(turn.conversation_id)
    assert [m["error_code"] for m in conv["messages"]] == [None, "engine_crashed", None, None]


async def test_engine_events_stream_snapshot_then_transitions(app: RunningApp, root: Path) -> None:
    model = fake_model(root, "events", load_delay=0.3)
    seen: list[tuple[str, dict[str, Any]]] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with app.client.stream("GET", "/api/engines/events") as resp:
            assert resp.status_code == 200
            async for event, data in iter_events(resp):
                seen.append((event, data))
                subscribed.set()
                if event == "engine" and data["model"] == model and data["new"] == "ready":
                    return

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(subscribed.wait(), 10)
    assert seen[0][0] == "snapshot"
    snapshot = seen[0][1]
    assert snapshot["policy"] == "swap" and isinstance(snapshot["engines"], list)

    resp = await app.client.post("/api/engines/start", json={"model_id": model})
    assert resp.status_code == 200, resp.text
    started = resp.json()
    assert started["state"] == "ready" and psutil.pid_exists(started["pid"])
    await asyncio.wait_for(listener, 15)

    mine = [d for e, d in seen[1:] if e == "engine" and d["model"] == model]
    transitions = [(d["old"], d["new"]) for d in mine if d["old"] != d["new"]]
    assert transitions == [
        ("stopped", "preparing"),
        ("preparing", "queued"),
        ("queued", "starting"),
        ("starting", "loading"),
        ("loading", "ready"),
    ]
    assert mine[-1]["status"]["state"] == "ready"
    assert mine[-1]["status"]["pid"] == started["pid"]

    logs = await app.get(f"/api/engines/{started['id']}/logs", params={"tail": 50})
    assert any("Starting httpd" in line for line in logs["lines"]), logs

    resp = await app.client.post(f"/api/engines/{started['id']}/stop")
    assert resp.status_code == 200 and resp.json()["state"] == "stopped"
    assert pid_gone(started["pid"])
    missing = await app.client.post("/api/engines/mlx-999999/stop")
    assert missing.status_code == 404


async def test_second_backend_on_the_same_data_dir_is_refused(app: RunningApp) -> None:
    second = create_app(app.settings)
    with pytest.raises(LegalAssistantError) as caught:
        async with second.router.lifespan_context(second):
            pass
    assert caught.value.code == "data_dir_locked"
    assert str(app.settings.data_dir) in caught.value.detail
    # The running backend is untouched.
    assert (await app.get("/healthz"))["status"] == "ok"
