"""Scoped API keys (issue #21) with the official clients of the three gateway protocols
(openai, anthropic, ollama): a key acts as its user within its scopes and its model
allowlist, refusals come in each protocol's own error shape (the SDKs raise their typed
permission errors), the daily token quota is counted from the engine's reported usage
and enforced with 429, usage is visible to the key's user and to admins, and a key
cannot mint keys.

The engine is the fake engine (tests/fakes/fake_engine.py, an OpenAI-compatible stand-in
for mlx_lm.server that reports usage like it): what is checked is the key handling, not
what a model answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from accounts_helpers import accounts_settings, add_user, fake_model, signed_in
from surrealdb import RecordID

from app_harness import RunningApp, serve_app
from legal_assistant.catalog import ollama_name, parse_model_id
from legal_assistant.runtime.bundled import BUNDLED_MODEL_ID
from legal_assistant.store.records import timestamp


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    model = f"mlx:{fake_model(tmp_path)}"
    async with serve_app(accounts_settings(tmp_path)) as app:
        await add_user(app, "root", role="admin")
        await add_user(app, "alice")
        await add_user(app, "bob")
        async with signed_in(app, "alice") as alice:

            async def key(**body: Any) -> dict[str, Any]:
                resp = await alice.post("/api/keys", json={"name": "k", **body})
                assert resp.status_code == 201, resp.text
                data: dict[str, Any] = resp.json()
                return data

            yield {"app": app, "alice": alice, "model": model, "key": key}


def openai_client(app: RunningApp, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{app.url}/v1",
        api_key=key,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
    )


def anthropic_client(app: RunningApp, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=app.url,
        api_key=key,
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False),
    )


def ollama_client(app: RunningApp, key: str) -> ollama.AsyncClient:
    return ollama.AsyncClient(
        host=f"{app.url}/ollama", headers={"Authorization": f"Bearer {key}"}, trust_env=False
    )


async def test_a_gateway_key_serves_its_models_on_all_three_protocols(
    gateway: dict[str, Any],
) -> None:
    app, model = gateway["app"], gateway["model"]
    created = await gateway["key"](scopes=["gateway"], models=[model, BUNDLED_MODEL_ID])
    assert created["key"].startswith("la-")
    assert set(created["models"]) == {model, BUNDLED_MODEL_ID}
    key = created["key"]
    other = "mlx:mlx-community/Qwen2.5-3B-Instruct-4bit"

    oa = openai_client(app, key)
    # Listed: the catalog's models the key allows (the fake model is a path, not listed).
    assert [m.id for m in (await oa.models.list()).data] == [BUNDLED_MODEL_ID]
    answer = await oa.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Bonjour"}], max_tokens=8
    )
    assert answer.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await oa.chat.completions.create(
            model=other, messages=[{"role": "user", "content": "Bonjour"}], max_tokens=8
        )
    assert denied.value.status_code == 403 and "does not allow" in str(denied.value)

    an = anthropic_client(app, key)
    message = await an.messages.create(
        model=model, max_tokens=8, messages=[{"role": "user", "content": "Bonjour"}]
    )
    assert message.content[0].type == "text"
    with pytest.raises(anthropic.PermissionDeniedError):
        await an.messages.create(
            model=other, max_tokens=8, messages=[{"role": "user", "content": "Bonjour"}]
        )

    ol = ollama_client(app, key)
    allowed = {ollama_name(parse_model_id(m)) for m in (model, BUNDLED_MODEL_ID)}
    listed = {m.model for m in (await ol.list()).models}
    assert ollama_name(parse_model_id(BUNDLED_MODEL_ID)) in listed and listed <= allowed
    reply = await ol.chat(model=model, messages=[{"role": "user", "content": "Bonjour"}])
    assert reply.message.content
    with pytest.raises(ollama.ResponseError) as refused:
        await ol.chat(model=other, messages=[{"role": "user", "content": "Bonjour"}])
    assert refused.value.status_code == 403

    # The gateway scope is not the rest of the API.
    async with httpx.AsyncClient(base_url=app.url, trust_env=False) as raw:
        resp = await raw.get("/api/dossiers", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"

    # Three answered requests, their tokens counted from the engine's usage.
    listed = (await gateway["alice"].get("/api/keys")).json()["keys"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert mine["requests_today"] >= 6 and mine["tokens_today"] > 0
    assert "key" not in mine and "secret_hash" not in mine


async def test_scopes_read_and_write(gateway: dict[str, Any]) -> None:
    app = gateway["app"]
    reader = (await gateway["key"](scopes=["read"]))["key"]
    writer = (await gateway["key"](scopes=["read", "write"]))["key"]
    async with httpx.AsyncClient(base_url=app.url, trust_env=False) as raw:

        def auth(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        assert (await raw.get("/api/dossiers", headers=auth(reader))).status_code == 200
        resp = await raw.post("/api/dossiers", json={"name": "X"}, headers=auth(reader))
        assert resp.status_code == 403
        resp = await raw.post("/api/dossiers", json={"name": "X"}, headers=auth(writer))
        assert resp.status_code == 201  # no CSRF token with a key: no ambient credential
        # Acting as Alice: her dossier, not anyone else's.
        assert (await gateway["alice"].get(f"/api/dossiers/{resp.json()['id']}")).status_code == 200
        with pytest.raises(openai.PermissionDeniedError):
            await openai_client(app, reader).models.list()
        # The allowlist holds for our own chat too.
        narrow = (await gateway["key"](scopes=["read", "write"], models=[BUNDLED_MODEL_ID]))["key"]
        resp = await raw.post(
            "/api/chat/stream",
            json={"message": "Bonjour", "model_id": gateway["model"]},
            headers=auth(narrow),
        )
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
        # A key cannot mint keys (it could widen its own scopes).
        resp = await raw.post(
            "/api/keys", json={"name": "wider", "scopes": ["gateway"]}, headers=auth(writer)
        )
        assert resp.status_code == 403


async def test_daily_token_quota_is_enforced_from_the_engines_usage(
    gateway: dict[str, Any],
) -> None:
    app, model = gateway["app"], gateway["model"]
    created = await gateway["key"](scopes=["gateway"], daily_tokens=5)
    client = openai_client(app, created["key"])
    first = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Bonjour"}], max_tokens=8
    )
    assert first.usage is not None and first.usage.total_tokens >= 5
    with pytest.raises(openai.RateLimitError) as spent:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "encore"}], max_tokens=8
        )
    retry = int(spent.value.response.headers["retry-after"])
    assert 0 < retry <= 86_400
    with pytest.raises(ollama.ResponseError) as refused:
        await ollama_client(app, created["key"]).chat(
            model=model, messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.status_code == 429
    listed = (await gateway["alice"].get("/api/keys")).json()["keys"]
    assert next(k for k in listed if k["id"] == created["id"])["tokens_today"] == (
        first.usage.total_tokens
    )


async def test_keys_are_listed_for_their_user_and_admins_revoked_and_expire(
    gateway: dict[str, Any],
) -> None:
    app = gateway["app"]
    created = await gateway["key"](scopes=["gateway"])
    key = created["key"]
    async with signed_in(app, "bob") as bob, signed_in(app, "root") as root:
        assert (await bob.get("/api/keys")).json()["keys"] == []
        assert (await bob.get("/api/keys?all=true")).status_code == 403
        assert (await bob.delete(f"/api/keys/{created['id']}")).status_code == 404
        everyone = (await root.get("/api/keys?all=true")).json()["keys"]
        assert [k["id"] for k in everyone] == [created["id"]]
    client = openai_client(app, key)
    assert len((await client.models.list()).data) > 0
    # Expired: refused like an unknown key.
    await app.state.db.query(
        "UPDATE $id SET expires_at = $then",
        {"id": RecordID("api_key", created["id"]), "then": timestamp() - timedelta(seconds=1)},
    )
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()
    second = await gateway["key"](scopes=["gateway"])
    client = openai_client(app, second["key"])
    assert len((await client.models.list()).data) > 0
    assert (await gateway["alice"].delete(f"/api/keys/{second['id']}")).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()
    with pytest.raises(anthropic.AuthenticationError):
        await anthropic_client(app, second["key"]).messages.create(
            model="x", max_tokens=1, messages=[{"role": "user", "content": "x"}]
        )
    # Stored hashed: the secret half is nowhere in the database.
    rows = (await app.state.db.query("SELECT * FROM api_key"))[-1]
    secret = second["key"].split(".", 1)[1]
    assert rows and all(secret not in str(r) for r in rows)
