"""The seed's scenarios through the HTTP API, against the real `mlx_lm.server` and the
bundled SmolLM2 model (no stand-in for the engine).

One app (and so one supervisor and one warm engine) is shared by the module: an engine
cold start plus the first prefill costs ~20 s on this CPU. Each test makes its own
conversations, and the tests that need a cold engine stop it first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from app_harness import (
    BUNDLED,
    RunningApp,
    iter_events,
    load_fake,
    make_settings,
    pid_gone,
    poll,
    serve_app,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

FR_STARTING = "🍎 Démarrage du serveur MLX..."
FR_READY = "✅ Serveur MLX prêt"
EN_STARTING = "🍎 Starting the MLX server..."
EN_READY = "✅ MLX server ready"
TIMING_KEYS = {"queue_s", "start_s", "ttft_s", "total_s", "tokens_per_s"}


@pytest.fixture(scope="module")
def ollama() -> Iterator[Any]:
    with load_fake("fake_ollama").FakeOllama() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, bundled_model: Path, ollama: Any
) -> AsyncIterator[RunningApp]:
    # bundled_model: converted beforehand, so a first turn starts at "starting" (no
    # "preparing" phase) like the seed's scenario 1.
    settings = make_settings(tmp_path_factory.mktemp("api-mlx"), models_dir, ollama_url=ollama.url)
    async with serve_app(settings) as running:
        yield running


async def stop_engines(app: RunningApp) -> None:
    resp = await app.client.post("/api/settings/mlx/stop")
    assert resp.status_code == 200, resp.text
    assert resp.json()["running"] is False


async def running_pid(app: RunningApp) -> int:
    status = await app.mlx_status()
    assert status["running"] is True, status
    pid = status["pid"]
    assert isinstance(pid, int) and psutil.pid_exists(pid)
    return pid


def assert_answer(turn: Any, *, model: str, provider: str = "mlx") -> dict[str, Any]:
    assert turn.status_code == 200, turn.body
    assert turn.all("error") == [], turn.all("error")
    assert turn.names[0] == "meta" and turn.names[-1] == "done", turn.names
    meta = turn.one("meta")
    assert meta["model"] == model and meta["provider"] == provider
    assert turn.all("token"), turn.names
    done = turn.one("done")
    assert done["conversation_id"] == meta["conversation_id"]
    assert done["model"] == model and done["provider"] == provider
    assert set(done["timings"]) == TIMING_KEYS
    return done


async def test_first_message_starts_the_engine_then_answers(app: RunningApp) -> None:
    """Seed scenario 1: "Bonjour" to the default model on a cold engine."""
    await stop_engines(app)
    turn = await app.chat(message="Bonjour", max_tokens=12)

    done = assert_answer(turn, model=BUNDLED)
    statuses = turn.statuses
    assert turn.names[1] == "status", turn.names
    assert statuses[0]["phase"] == "starting"
    assert statuses[0]["message"] == FR_STARTING
    assert statuses[-1]["phase"] == "ready"
    assert statuses[-1]["message"] == FR_READY
    # Every status comes before the answer, and they are about this engine.
    assert max(i for i, n in enumerate(turn.names) if n == "status") < turn.names.index("token")
    assert {s["engine"] for s in statuses} == {"mlx"}
    assert {s["model"] for s in statuses} == {BUNDLED}
    elapsed = [s["elapsed_s"] for s in statuses]
    assert elapsed == sorted(elapsed)

    status = await app.mlx_status()
    assert status["running"] is True and status["model"] == BUNDLED
    assert done["engine_port"] == status["port"]
    assert done["usage"]["completion_tokens"] >= 1
    assert done["usage"]["prompt_tokens"] > 0
    assert done["timings"]["start_s"] > 0  # this turn paid for the start
    assert done["timings"]["ttft_s"] is not None

    conv = await app.conversation(turn.conversation_id)
    user, assistant = conv["messages"]
    assert user["role"] == "user" and user["content"] == "Bonjour"
    assert user["id"] == turn.one("meta")["user_message_id"]
    assert assistant["role"] == "assistant"
    assert assistant["id"] == done["message_id"]
    assert assistant["content"] == turn.text
    assert assistant["model_id"] == BUNDLED and assistant["provider"] == "mlx"
    assert assistant["engine_port"] == status["port"]
    assert assistant["partial"] is False and assistant["error_code"] is None
    assert assistant["timings"]["ttft_s"] is not None
    assert assistant["usage"] == done["usage"]


async def test_second_message_reuses_the_running_engine(app: RunningApp) -> None:
    """Seed scenario 2: same conversation, no status at all, same process."""
    first = await app.chat(message="Bonjour", max_tokens=8)
    assert_answer(first, model=BUNDLED)
    pid = await running_pid(app)

    second = await app.chat(
        message="Quelle est la capitale de la France ?",
        conversation_id=first.conversation_id,
        max_tokens=8,
    )
    done = assert_answer(second, model=BUNDLED)
    assert second.statuses == []
    assert set(second.names) == {"meta", "token", "done"}
    assert done["timings"]["start_s"] == 0.0
    assert await running_pid(app) == pid

    conv = await app.conversation(first.conversation_id)
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]
    assert conv["messages"][2]["content"] == "Quelle est la capitale de la France ?"
    assert conv["messages"][3]["content"] == second.text
    assert conv["message_count"] == 4


async def test_ollama_turn_leaves_the_mlx_engine_running(app: RunningApp, ollama: Any) -> None:
    """Seed scenario 4: MLX → Ollama; the MLX server keeps running in the background."""
    mlx_turn = await app.chat(message="Bonjour", max_tokens=4)
    assert_answer(mlx_turn, model=BUNDLED)
    pid = await running_pid(app)

    turn = await app.chat(
        message="Une question de droit", model_id="ollama:llama3.2", max_tokens=64
    )
    done = assert_answer(turn, model="ollama:llama3.2", provider="ollama")
    assert turn.statuses == []
    assert turn.text == ollama.reply
    assert done["engine_port"] is None
    assert ollama.chat_requests[-1]["model"] == "llama3.2"

    status = await app.mlx_status()
    assert status["pid"] == pid and status["state"] == "ready" and status["running"] is True
    assert psutil.pid_exists(pid)
    conv = await app.conversation(turn.conversation_id)
    assert conv["messages"][-1]["provider"] == "ollama"
    assert conv["messages"][-1]["content"] == ollama.reply


async def test_seed_start_status_stop_endpoints(app: RunningApp) -> None:
    """POST /api/settings/mlx/start (JSON and SSE), GET status, POST stop, engine logs."""
    resp = await app.client.post("/api/settings/mlx/start", json={"model_id": BUNDLED})
    assert resp.status_code == 200, resp.text
    started = resp.json()
    assert started["running"] is True and started["model"] == BUNDLED
    assert isinstance(started["port"], int) and isinstance(started["pid"], int)
    assert psutil.pid_exists(started["pid"])
    assert (await app.mlx_status())["pid"] == started["pid"]

    logs = await app.get(f"/api/engines/{started['id']}/logs", params={"tail": 500})
    assert logs["model"] == BUNDLED
    assert any("Starting httpd" in line for line in logs["lines"]), logs["lines"][-10:]

    resp = await app.client.post("/api/settings/mlx/stop")
    assert resp.status_code == 200
    assert resp.json()["running"] is False
    assert pid_gone(started["pid"])

    # Cold engine, Accept: text/event-stream: status events, then `done`.
    events: list[tuple[str, dict[str, Any]]] = []
    async with app.client.stream(
        "POST",
        "/api/settings/mlx/start",
        json={"model_id": BUNDLED},
        headers={"Accept": "text/event-stream"},
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for item in iter_events(stream):
            events.append(item)
    names = [n for n, _ in events]
    assert names[-1] == "done" and "error" not in names, events
    statuses = [d for n, d in events if n == "status"]
    assert statuses[0]["message"] == FR_STARTING
    assert statuses[-1]["phase"] == "ready" and statuses[-1]["message"] == FR_READY
    done = events[-1][1]
    assert done["running"] is True and done["model"] == BUNDLED
    status = await app.mlx_status()
    assert status["running"] is True and status["pid"] == done["pid"] != started["pid"]


async def test_english_status_messages_on_a_cold_engine(app: RunningApp) -> None:
    await stop_engines(app)
    turn = await app.chat(message="Hello", language="en", max_tokens=8)
    assert_answer(turn, model=BUNDLED)
    messages = [s["message"] for s in turn.statuses]
    assert messages[0] == EN_STARTING
    assert messages[-1] == EN_READY
    assert not any("serveur" in m for m in messages), messages


async def test_switching_mlx_model_replaces_the_engine(app: RunningApp, second_model: Path) -> None:
    """Seed scenario 3: another MLX model → the old server stops, the new one answers."""
    status = await app.mlx_status()
    if not (status["running"] and status["model"] == BUNDLED):
        resp = await app.client.post("/api/settings/mlx/start", json={"model_id": BUNDLED})
        assert resp.status_code == 200, resp.text
    old_pid = await running_pid(app)
    other = f"mlx:{second_model}"

    turn = await app.chat(message="Bonjour", model_id=other, max_tokens=8)
    done = assert_answer(turn, model=other)
    phases = [s["phase"] for s in turn.statuses]
    assert phases[0] == "starting" and phases[-1] == "ready", phases
    assert turn.statuses[0]["message"] == FR_STARTING
    assert {s["model"] for s in turn.statuses} == {other}

    await poll(lambda: pid_gone(old_pid), timeout=10, what=f"pid {old_pid} to exit")
    new_pid = await running_pid(app)
    assert new_pid != old_pid
    status = await app.mlx_status()
    assert status["model"] == other and done["engine_port"] == status["port"]

    engines = {e["model"]: e for e in (await app.get("/api/engines"))["engines"]}
    assert engines[other]["state"] == "ready" and engines[other]["pid"] == new_pid
    assert engines[BUNDLED]["state"] == "stopped" and engines[BUNDLED]["pid"] is None
