"""`regenerate: true` answers the conversation's last question again (the UI's retry after
an error) without saving the question twice. On the fake engine (a stand-in of
mlx_lm.server, tests/fakes/fake_engine.py)."""

from __future__ import annotations

from pathlib import Path

from app_harness import fake_engine_command, fake_model_dir, make_settings, serve_app


async def test_retry_after_an_error_does_not_duplicate_the_question(
    tmp_path: Path, models_dir: Path
) -> None:
    settings = make_settings(tmp_path, models_dir, mlx_command=fake_engine_command())
    good = f"mlx:{fake_model_dir(tmp_path, 'good', tokens=4)}"
    async with serve_app(settings) as app:
        failed = await app.chat(message="Qu'est-ce qu'un bail ?", model_id="mlx:/no/such/model")
        assert failed.names[-1] == "error"
        conversation_id = failed.conversation_id

        retry = await app.chat(
            message="", conversation_id=conversation_id, model_id=good, regenerate=True
        )
        assert retry.names[-1] == "done", retry.events
        assert retry.one("meta")["user_message_id"] == failed.one("meta")["user_message_id"]
        assert retry.text

        messages = (await app.conversation(conversation_id))["messages"]
        roles = [(m["role"], m["error_code"]) for m in messages]
        assert roles == [("user", None), ("assistant", "model_not_found"), ("assistant", None)]
        assert messages[0]["content"] == "Qu'est-ce qu'un bail ?"


async def test_regenerate_needs_a_conversation(tmp_path: Path, models_dir: Path) -> None:
    settings = make_settings(tmp_path, models_dir, mlx_command=fake_engine_command())
    async with serve_app(settings) as app:
        refused = await app.chat(message="", regenerate=True)
        assert refused.status_code == 400 and refused.body is not None
        assert refused.body["error"]["code"] == "bad_request"
        assert await app.get("/api/conversations") == []
