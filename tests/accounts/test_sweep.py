"""The authorisation sweep (issue #21): every route of the app, taken from the app's own
route table — so a route added tomorrow is swept too — is called by another member
(Bob) and by an anonymous client with the ids of Alice's dossier, document and
conversation. Nothing of Alice's may be read or changed by id guessing: Bob gets 404 for
her dossier, document and conversation (exactly what an id that exists nowhere gets),
403 for administration, the anonymous client 401 everywhere but the public routes; no
response carries a trace of her data; and afterwards her data is intact.

Then Alice shares the dossier with Bob as a reader, then as an editor, and the same
sweep checks the middle ground: readers read, search and ask, editors also upload and
delete documents, only the owner renames, deletes or shares (403 for what they see but
may not change).

Engines are the fake engine (tests/fakes/fake_engine.py, an OpenAI-compatible stand-in
for mlx_lm.server): what is checked is who may do what, not what a model answers. The
documents are ingested for real (extraction worker, embedding engine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from accounts_helpers import accounts_settings, add_user, anonymous, fake_model, signed_in
from fastapi import routing
from fastapi.routing import APIRoute

from app_harness import RunningApp, chat, serve_app
from legal_assistant.accounts.policy import RESOURCE_GUARDS

SECRET = "7781"
PUBLIC = {("GET", "/healthz"), ("POST", "/api/auth/login")}
# Routes a member calls on their own account only; swept separately (logout ends Bob's
# session, a password change needs his password).
SELF = {"/api/auth/logout", "/api/auth/password"}
ADMIN_ONLY = re.compile(
    r"^(/api/users|/api/audit|/metrics|/api/engines/\{engine_id\}/(stop|logs|slots)"
    r"|/api/settings/mlx/(start|stop)|/api/engines/start|/ollama/api/(pull|\{action\}))"
)


def api_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every API route, included routers flattened (FastAPI
    keeps included routers lazily: `iter_route_contexts` gives each effective route, with
    its full path and the router-level dependencies in its dependant)."""
    found = []
    for context in routing.iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                found.append((method, route.path, route))
    return found


def dependency_calls(dependant: Any) -> set[Any]:
    calls = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= dependency_calls(sub)
    return calls


def test_every_route_on_a_dossier_or_conversation_goes_through_the_policy(
    tmp_path: Path,
) -> None:
    """Structural half of the sweep: no route reaches a dossier or conversation id
    without one of the policy's dependencies (a route checked by hand would fail here)."""
    from legal_assistant.api.app import create_app

    app = create_app(accounts_settings(tmp_path))
    routes = api_routes(app)
    guarded = [(m, p) for m, p, r in routes if "{dossier_id}" in p or "{conversation_id}" in p]
    assert len(guarded) >= 12, guarded  # dossiers, documents, pages, files, events, ...
    for method, path, route in routes:
        if "{dossier_id}" in path or "{conversation_id}" in path:
            assert dependency_calls(route.dependant) & RESOURCE_GUARDS, (method, path)


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids.get(m.group(1), "x"), path)


async def call(client: httpx.AsyncClient, method: str, url: str) -> tuple[int, str]:
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    async with client.stream(method, url, json=body) as resp:
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            return resp.status_code, ""  # an open stream (engine events): not read
        return resp.status_code, (await resp.aread()).decode(errors="replace")


@pytest.fixture
async def firm(tmp_path: Path) -> Any:
    model = fake_model(tmp_path)
    async with serve_app(accounts_settings(tmp_path)) as app:
        await add_user(app, "root", role="admin")
        await add_user(app, "alice")
        await add_user(app, "bob")
        async with signed_in(app, "alice") as alice, signed_in(app, "bob") as bob:
            dossier = (
                await alice.post("/api/dossiers", json={"name": f"Affaire Alpha-{SECRET}"})
            ).json()
            upload = await alice.post(
                f"/api/dossiers/{dossier['id']}/documents",
                files={"file": (f"secret-{SECRET}.txt", f"Clause {SECRET} du bail.".encode())},
            )
            assert upload.status_code == 202, upload.text
            document = upload.json()["documents"][0]
            turn = await chat(
                alice, message=f"question confidentielle {SECRET}", model_id=f"mlx:{model}"
            )
            assert turn.status_code == 200 and "done" in turn.names, turn.names
            engines = (await alice.get("/api/engines")).json()["engines"]
            yield {
                "app": app,
                "alice": alice,
                "bob": bob,
                "model": model,
                "ids": {
                    "dossier_id": dossier["id"],
                    "document_id": document["id"],
                    "conversation_id": turn.conversation_id,
                    "engine_id": engines[0]["id"] if engines else "x",
                    "user_id": "0" * 32,
                    "key_id": "0" * 32,
                    "page": "1",
                },
            }


async def test_another_member_and_anonymous_cannot_reach_alices_data(firm: Any) -> None:
    app: RunningApp = firm["app"]
    bob: httpx.AsyncClient = firm["bob"]
    alice: httpx.AsyncClient = firm["alice"]
    ids = firm["ids"]
    swept = 0
    async with anonymous(app) as anon:
        for method, path, _ in api_routes(app.app):
            url = fill(path, ids)
            status, text = await call(anon, method, url)
            if (method, path) not in PUBLIC:
                assert status == 401, (method, path, status, text[:200])
            assert SECRET not in text, (method, path)
            if path in SELF:
                continue
            status, text = await call(bob, method, url)
            swept += 1
            assert SECRET not in text, (method, path, text[:300])
            if "{dossier_id}" in path or "{conversation_id}" in path:
                assert status == 404, (method, path, status, text[:200])
            elif ADMIN_ONLY.match(path):
                assert status == 403, (method, path, status, text[:200])
    assert swept >= 40
    # Bodies naming her conversation or dossier are refused the same way.
    for body in ({"conversation_id": ids["conversation_id"]}, {"dossier_id": ids["dossier_id"]}):
        turn = await chat(bob, message="et alors ?", model_id=f"mlx:{firm['model']}", **body)
        assert turn.status_code == 404, turn.body
    # Lists: nothing of hers.
    assert (await bob.get("/api/dossiers")).json()["dossiers"] == []
    assert (await bob.get("/api/conversations")).json() == []
    # Her data is intact.
    dossier = (await alice.get(f"/api/dossiers/{ids['dossier_id']}")).json()
    assert dossier["name"] == f"Affaire Alpha-{SECRET}" and dossier["documents"] == 1
    convo = (await alice.get(f"/api/conversations/{ids['conversation_id']}")).json()
    assert convo["messages"][0]["content"].endswith(SECRET)
    # Every refusal of Bob's on her dossier is in the audit log.
    denied = (
        await app.state.db.query("SELECT * FROM audit WHERE user = 'bob' AND outcome = 'denied'")
    )[-1]
    assert any(ids["dossier_id"] in r["resource"] for r in denied)
    assert any(ids["conversation_id"] in r["resource"] for r in denied)


async def test_readers_read_editors_edit_only_the_owner_shares(firm: Any) -> None:
    alice: httpx.AsyncClient = firm["alice"]
    bob: httpx.AsyncClient = firm["bob"]
    ids = firm["ids"]
    base = f"/api/dossiers/{ids['dossier_id']}"
    doc = f"{base}/documents/{ids['document_id']}"

    async def share(role: str | None) -> None:
        members = [{"username": "bob", "role": role}] if role else []
        resp = await alice.put(f"{base}/members", json={"members": members})
        assert resp.status_code == 200, resp.text
        assert [m["username"] for m in resp.json()["members"]] == (["bob"] if role else [])

    assert (await alice.get(f"{base}/access")).json() == {
        "role": "owner",
        "can_edit": True,
        "can_share": True,
    }
    await share("reader")
    access = (await bob.get(f"{base}/access")).json()
    assert access == {"role": "reader", "can_edit": False, "can_share": False}
    assert [d["id"] for d in (await bob.get("/api/dossiers")).json()["dossiers"]] == [
        ids["dossier_id"]
    ]
    for url in (base, f"{base}/documents", doc, f"{base}/search?q=bail"):
        resp = await bob.get(url)
        assert resp.status_code == 200, (url, resp.text[:200])
    # Her conversation stays hers, even in a dossier Bob may read.
    assert (await bob.get(f"/api/conversations/{ids['conversation_id']}")).status_code == 404
    assert (await bob.get(f"{base}/conversations")).json()["conversations"] == []
    turn = await chat(
        bob,
        message="Que dit la clause ?",
        model_id=f"mlx:{firm['model']}",
        dossier_id=ids["dossier_id"],
    )
    assert turn.status_code == 200, turn.body
    for method, url, body in (
        ("POST", f"{base}/documents", None),
        ("DELETE", doc, None),
        ("PATCH", base, {"name": "volé"}),
        ("DELETE", base, None),
        ("PUT", f"{base}/members", {"members": []}),
        ("GET", f"{base}/members", None),
    ):
        resp = await bob.request(method, url, json=body)
        assert resp.status_code == 403, (method, url, resp.status_code, resp.text[:200])
        assert resp.json()["error"]["code"] == "forbidden"

    await share("editor")
    assert (await bob.get(f"{base}/access")).json()["can_edit"] is True
    upload = await bob.post(f"{base}/documents", files={"file": ("note-bob.txt", b"Note de Bob.")})
    assert upload.status_code == 202, upload.text
    bobs_doc = upload.json()["documents"][0]["id"]
    assert (await bob.delete(f"{base}/documents/{bobs_doc}")).status_code == 200
    for method, url, body in (
        ("PATCH", base, {"name": "volé"}),
        ("DELETE", base, None),
        ("PUT", f"{base}/members", {"members": []}),
    ):
        resp = await bob.request(method, url, json=body)
        assert resp.status_code == 403, (method, url, resp.status_code)

    await share(None)
    assert (await bob.get(base)).status_code == 404
    assert (await bob.get("/api/dossiers")).json()["dossiers"] == []
    # The owner deletes; the dossier is gone for everyone.
    assert (await alice.delete(base)).status_code == 200
    assert (await alice.get(base)).status_code == 404
