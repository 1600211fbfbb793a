"""The API key: required beyond loopback, checked on every API route once configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app_harness import make_settings, serve_app
from legal_assistant.config import Settings

KEY = "s3cret-key-for-tests"
ROUTES = [
    ("GET", "/api/conversations"),
    ("GET", "/api/settings/mlx/status"),
    ("GET", "/api/engines"),
    ("GET", "/api/models"),
    ("GET", "/api/settings"),
    ("POST", "/api/settings/mlx/stop"),
]


def test_binding_beyond_loopback_requires_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LEGAL_ASSISTANT_API_KEY"):
        Settings(host="0.0.0.0", data_dir=tmp_path)
    assert Settings(host="0.0.0.0", api_key=KEY, data_dir=tmp_path).api_key == KEY
    assert Settings(host="127.0.0.1", data_dir=tmp_path).api_key is None


async def test_requests_need_the_key_once_one_is_configured(
    tmp_path: Path, models_dir: Path
) -> None:
    # Bound on loopback for the test; the check applies whenever a key is configured.
    settings = make_settings(tmp_path, models_dir, api_key=KEY)
    async with serve_app(settings) as app:
        for method, path in ROUTES:
            resp = await app.client.request(method, path)
            assert resp.status_code == 401, (path, resp.text)
            error = resp.json()["error"]
            assert error["code"] == "unauthorized" and error["type"] == "unauthorized"
            wrong = await app.client.request(method, path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401, path
            ok = await app.client.request(method, path, headers={"Authorization": f"Bearer {KEY}"})
            assert ok.status_code == 200, (path, ok.text)

        # A chat without the key is refused before anything is saved.
        refused = await app.client.post("/api/chat/stream", json={"message": "Bonjour"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        # X-API-Key and ?api_key= (EventSource cannot send headers) are accepted too.
        alt = await app.client.get("/api/conversations", headers={"X-API-Key": KEY})
        assert alt.status_code == 200 and alt.json() == []
        query = await app.client.get("/api/conversations", params={"api_key": KEY})
        assert query.status_code == 200
        # Liveness stays open for supervisors and load balancers.
        assert (await app.client.get("/healthz")).status_code == 200


async def test_no_key_configured_means_no_check(tmp_path: Path, models_dir: Path) -> None:
    async with serve_app(make_settings(tmp_path, models_dir)) as app:
        resp = await app.client.get("/api/conversations")
        assert resp.status_code == 200
        assert "api_key" not in (await app.get("/api/settings"))


async def test_events_stream_needs_the_key(tmp_path: Path, models_dir: Path) -> None:
    settings = make_settings(tmp_path, models_dir, api_key=KEY)
    async with serve_app(settings) as app:
        resp = await app.client.get("/api/engines/events")
        assert resp.status_code == 401
        async with app.client.stream(
            "GET", "/api/engines/events", params={"api_key": KEY}
        ) as stream:
            assert stream.status_code == 200
            first = await anext(stream.aiter_lines())
            assert first == "event: snapshot"
