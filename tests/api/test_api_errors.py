"""Failures of a chat turn: what the user sees (a classified `error` event, or a 4xx JSON
refusal before anything happens) and what is kept (the user's message, always, once the
turn has begun)."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from app_harness import BUNDLED, RunningApp, Turn, make_settings, serve_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOT_INSTALLED_FR = (
    "❌ Échec du démarrage du serveur MLX. Vérifiez que mlx-lm est installé (uv sync)."
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> AsyncIterator[RunningApp]:
    """Real-engine settings; no test here gets as far as a running engine."""
    settings = make_settings(tmp_path_factory.mktemp("api-errors"), models_dir)
    async with serve_app(settings) as running:
        yield running


def assert_error_turn(turn: Turn, code: str) -> dict[str, object]:
    assert turn.status_code == 200, turn.body
    assert turn.names[0] == "meta" and turn.names[-1] == "error", turn.names
    assert "token" not in turn.names and "done" not in turn.names
    error = turn.one("error")
    assert error["code"] == code, error
    assert error["conversation_id"] == turn.conversation_id
    assert error["partial"] is False
    return error


async def assert_user_message_kept(app: RunningApp, turn: Turn, content: str) -> None:
    conv = await app.conversation(turn.conversation_id)
    user = conv["messages"][0]
    assert user["role"] == "user" and user["content"] == content
    assert user["id"] == turn.one("meta")["user_message_id"]
    # Whatever else was saved is flagged, never mistaken for an answer.
    for message in conv["messages"][1:]:
        assert message["role"] == "assistant" and message["error_code"] is not None


async def test_mlx_lm_missing_gives_the_seed_message(
    tmp_path: Path, models_dir: Path, bundled_model: Path
) -> None:
    # `-I -S`: no site-packages, so `-m mlx_lm` fails exactly like an uninstalled mlx-lm.
    settings = make_settings(
        tmp_path,
        models_dir,
        mlx_command=[sys.executable, "-I", "-S", "-m", "mlx_lm", "server"],
    )
    async with serve_app(settings) as app:
        turn = await app.chat(message="Bonjour")
        error = assert_error_turn(turn, "engine_not_installed")
        assert error["message"] == NOT_INSTALLED_FR
        assert any("mlx_lm" in line for line in error.get("log_tail", [])), error
        await assert_user_message_kept(app, turn, "Bonjour")

        english = await app.chat(message="Hello", language="en")
        error = assert_error_turn(english, "engine_not_installed")
        assert error["message"] == (
            "❌ The MLX server failed to start. Check that mlx-lm is installed (uv sync)."
        )


async def test_unknown_model_offline_fails_fast_with_model_not_found(
    app: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    turn = await app.chat(message="Bonjour", model_id="mlx:nobody/missing-model")
    assert time.monotonic() - t0 < 10
    error = assert_error_turn(turn, "model_not_found")
    assert str(error["message"]).startswith("❌")
    await assert_user_message_kept(app, turn, "Bonjour")


async def _conversation_count(app: RunningApp) -> int:
    return len(await app.get("/api/conversations"))


def assert_refused(turn: Turn, status: int, code: str) -> dict[str, object]:
    assert turn.status_code == status, (turn.status_code, turn.body, turn.names)
    assert turn.events == []
    assert turn.body is not None
    error = turn.body["error"]
    assert error["code"] == code and error["type"] == code, error
    assert str(error["message"]).startswith("❌")
    assert "detail" in error
    return error


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param({"message": ""}, 400, "bad_request", id="empty-message"),
        pytest.param({"message": "   \n "}, 400, "bad_request", id="blank-message"),
        pytest.param({"message": "x", "model_id": "foo:bar"}, 400, "unknown_provider", id="foo"),
        pytest.param(
            {"message": "x", "model_id": "mlx:--port 1"}, 400, "invalid_model_id", id="flag"
        ),
        pytest.param({"message": "x", "model_id": "smollm2"}, 400, "invalid_model_id", id="bare"),
        pytest.param({"message": "x", "language": "de"}, 400, "bad_request", id="language"),
        pytest.param({"model_id": BUNDLED}, 400, "bad_request", id="no-message"),
        pytest.param({"message": "x", "max_tokens": 0}, 400, "bad_request", id="max-tokens"),
        pytest.param(
            {"message": "x", "model_id": "openai:not-configured"},
            404,
            "model_not_found",
            id="openai-unconfigured",
        ),
        pytest.param(
            {"message": "x", "conversation_id": "0123456789abcdef0123456789abcdef"},
            404,
            "not_found",
            id="unknown-conversation",
        ),
        pytest.param(
            {"message": "x", "conversation_id": "../../etc"}, 404, "not_found", id="bad-conv-id"
        ),
    ],
)
async def test_refusals_happen_before_anything_is_saved(
    app: RunningApp, body: dict[str, object], status: int, code: str
) -> None:
    before = await _conversation_count(app)
    turn = await app.chat(**body)
    assert_refused(turn, status, code)
    assert await _conversation_count(app) == before
    assert (await app.mlx_status())["running"] is False


async def test_invalid_json_body_is_a_bad_request(app: RunningApp) -> None:
    before = await _conversation_count(app)
    resp = await app.client.post(
        "/api/chat/stream", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "bad_request"
    assert await _conversation_count(app) == before


async def test_refusal_messages_follow_the_request_language(app: RunningApp) -> None:
    fr = await app.chat(message="x", model_id="foo:bar")
    en = await app.chat(message="x", model_id="foo:bar", language="en")
    assert fr.body is not None and en.body is not None
    assert fr.body["error"]["message"].startswith("❌ Fournisseur de modèle inconnu")
    assert en.body["error"]["message"].startswith("❌ Unknown model provider")
    # The JSON refusal picks its language from ?lang= / Accept-Language.
    resp = await app.client.post(
        "/api/chat/stream",
        json={"message": "x", "model_id": "foo:bar"},
        headers={"Accept-Language": "en"},
    )
    assert resp.json()["error"]["message"].startswith("❌ Unknown model provider")


async def test_unknown_conversation_is_404(app: RunningApp) -> None:
    for method in ("GET", "DELETE"):
        resp = await app.client.request(
            method, "/api/conversations/0123456789abcdef0123456789abcdef"
        )
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "not_found"
