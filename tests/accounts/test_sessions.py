"""Sign-in, sessions and CSRF in accounts mode (issue #21): the cookie's attributes, the
session surviving a restart, the idle expiry, revocation on logout / password change /
disable, CSRF on state-changing cookie requests, one answer for every failed login, and
`AUTH_MODE=none` unchanged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from accounts_helpers import PASSWORD, accounts_settings, add_user, anonymous, signed_in

from app_harness import RunningApp, make_settings, serve_app
from legal_assistant.accounts.sessions import COOKIE_NAME
from legal_assistant.store.records import timestamp


async def test_login_sets_a_strict_httponly_cookie_and_me_logout_work(app: RunningApp) -> None:
    await add_user(app, "alice")
    async with anonymous(app) as client:
        resp = await client.post(
            "/api/auth/login", json={"username": "Alice", "password": PASSWORD}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["user"]["username"] == "alice" and body["user"]["role"] == "member"
        assert len(body["csrf_token"]) >= 32
        cookie = resp.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}=")
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=strict" in lowered
        assert "secure" not in lowered  # plain http here; Secure over https
        me = await client.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["user"]["username"] == "alice"
        assert me.json()["csrf_token"] == body["csrf_token"]
        out = await client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
        assert out.status_code == 200, out.text
        assert (await client.get("/api/auth/me")).status_code == 401
        # The cookie value itself is dead server-side, not only dropped by the client.
        client.cookies.set(COOKIE_NAME, cookie.split(";")[0].split("=", 1)[1])
        assert (await client.get("/api/dossiers")).status_code == 401


async def test_failed_logins_all_answer_the_same(app: RunningApp) -> None:
    """Unknown user, wrong password, disabled account: one status, one message."""
    bob = await add_user(app, "bob")
    await add_user(app, "carol")
    async with signed_in(app, "carol"):
        pass
    from legal_assistant.accounts.users import update_user

    await update_user(app.state.db, bob.id, disabled=True)
    answers = []
    async with anonymous(app) as client:
        for username, password in [
            ("nobody", PASSWORD),
            ("carol", "wrong password!!"),
            ("bob", PASSWORD),
        ]:
            resp = await client.post(
                "/api/auth/login", json={"username": username, "password": password}
            )
            answers.append((resp.status_code, resp.json()["error"]["message"]))
            assert COOKIE_NAME not in resp.headers.get("set-cookie", "")
    assert len(set(answers)) == 1 and answers[0][0] == 401, answers


async def test_state_changing_cookie_requests_need_the_csrf_token(app: RunningApp) -> None:
    await add_user(app, "alice")
    async with signed_in(app, "alice") as client:
        token = client.headers.pop("X-CSRF-Token")
        # Reads need no token.
        assert (await client.get("/api/dossiers")).status_code == 200
        for headers in ({}, {"X-CSRF-Token": "forged" + token[6:]}):
            resp = await client.post("/api/dossiers", json={"name": "Bail"}, headers=headers)
            assert resp.status_code == 403 and resp.json()["error"]["code"] == "csrf_failed"
        resp = await client.post(
            "/api/dossiers", json={"name": "Bail"}, headers={"X-CSRF-Token": token}
        )
        assert resp.status_code == 201, resp.text
        assert [d["name"] for d in (await client.get("/api/dossiers")).json()["dossiers"]] == [
            "Bail"
        ]


async def test_idle_session_expires(app: RunningApp) -> None:
    """A session unused for SESSION_IDLE_S ends (its last use is moved back in the
    database rather than waited for)."""
    await add_user(app, "alice")
    async with signed_in(app, "alice") as client:
        assert (await client.get("/api/auth/me")).status_code == 200
        idle = timedelta(seconds=app.settings.session_idle_s + 5)
        await app.state.db.query(
            "UPDATE session SET last_seen = $then", {"then": timestamp() - idle}
        )
        resp = await client.get("/api/auth/me")
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "not_signed_in"
    assert await app.state.db.query("SELECT * FROM session") == [[]]


async def test_password_change_and_disable_end_the_sessions(app: RunningApp) -> None:
    admin = await add_user(app, "root", role="admin")
    alice = await add_user(app, "alice")
    del admin
    async with signed_in(app, "root") as root, signed_in(app, "alice") as a1:
        resp = await root.patch(f"/api/users/{alice.id}", json={"password": "a brand new secret"})
        assert resp.status_code == 200, resp.text
        assert (await a1.get("/api/auth/me")).status_code == 401
        async with signed_in(app, "alice", "a brand new secret") as a2:
            assert (await a2.get("/api/auth/me")).status_code == 200
            resp = await root.patch(f"/api/users/{alice.id}", json={"disabled": True})
            assert resp.status_code == 200 and resp.json()["disabled"] is True
            assert (await a2.get("/api/auth/me")).status_code == 401
        # The admin's own session is untouched.
        assert (await root.get("/api/auth/me")).status_code == 200


async def test_own_password_change_keeps_this_session_and_ends_the_others(
    app: RunningApp,
) -> None:
    await add_user(app, "alice")
    async with signed_in(app, "alice") as here, signed_in(app, "alice") as elsewhere:
        resp = await here.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": "another long secret"},
        )
        assert resp.status_code == 200, resp.text
        here.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        assert (await here.get("/api/auth/me")).status_code == 200
        assert (await elsewhere.get("/api/auth/me")).status_code == 401
        short = await here.post(
            "/api/auth/password",
            json={"current_password": "another long secret", "new_password": "short"},
        )
        assert short.status_code == 400 and short.json()["error"]["code"] == "weak_password"


async def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    settings = accounts_settings(tmp_path)
    async with serve_app(settings) as first:
        await add_user(first, "alice")
        async with signed_in(first, "alice") as client:
            cookies = httpx.Cookies(client.cookies)
            csrf = client.headers["X-CSRF-Token"]
    async with (
        serve_app(settings) as second,
        httpx.AsyncClient(
            base_url=second.url, cookies=cookies, headers={"X-CSRF-Token": csrf}, trust_env=False
        ) as client,
    ):
        me = await client.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["user"]["username"] == "alice"
        assert (await client.post("/api/dossiers", json={"name": "X"})).status_code == 201


async def test_anonymous_requests_are_refused_except_health_login_and_ui(app: RunningApp) -> None:
    async with anonymous(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/")).status_code == 200  # the login page loads
        for path in ("/api/dossiers", "/api/conversations", "/api/engines", "/metrics"):
            resp = await client.get(path)
            assert resp.status_code == 401, (path, resp.status_code)
        resp = await client.get("/v1/models")
        assert resp.status_code == 401 and "error" in resp.json()
        assert (await client.get("/ollama/api/tags")).status_code == 401
    rows = (await app.state.db.query("SELECT * FROM audit WHERE outcome = 'denied'"))[-1]
    assert {r["resource"] for r in rows} >= {"/api/dossiers", "/v1/models"}


async def test_users_are_managed_by_admins_only(app: RunningApp) -> None:
    root = await add_user(app, "root", role="admin")
    await add_user(app, "alice")
    async with signed_in(app, "root") as admin, signed_in(app, "alice") as alice:
        resp = await admin.post(
            "/api/users", json={"username": "bob", "password": PASSWORD, "role": "member"}
        )
        assert resp.status_code == 201, resp.text
        again = await admin.post("/api/users", json={"username": "BOB", "password": PASSWORD})
        assert again.status_code == 409
        weak = await admin.post("/api/users", json={"username": "dan", "password": "short"})
        assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
        names = [u["username"] for u in (await admin.get("/api/users")).json()["users"]]
        assert names == ["alice", "bob", "root"]
        assert all(
            "password_hash" not in u for u in (await admin.get("/api/users")).json()["users"]
        )
        for call in (
            alice.get("/api/users"),
            alice.post("/api/users", json={"username": "eve", "password": PASSWORD}),
            alice.patch(f"/api/users/{root.id}", json={"disabled": True}),
        ):
            resp = await call
            assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
        last = await admin.patch(f"/api/users/{root.id}", json={"role": "member"})
        assert last.status_code == 409  # the last admin stays an admin


async def test_auth_mode_none_is_unchanged(tmp_path: Path) -> None:
    async with serve_app(make_settings(tmp_path, tmp_path / "models")) as app:
        me = (await app.client.get("/api/auth/me")).json()
        assert me["auth_mode"] == "none" and me["user"]["username"] == "local"
        resp = await app.client.post("/api/dossiers", json={"name": "Sans compte"})
        assert resp.status_code == 201
        assert len((await app.client.get("/api/dossiers")).json()["dossiers"]) == 1
        login = await app.client.post("/api/auth/login", json={"username": "x", "password": "y"})
        assert login.status_code == 400
        assert await app.state.db.query("SELECT * FROM audit") == [[]]
        assert not (app.settings.data_dir / "cli-token").exists()


def test_binding_beyond_loopback_needs_accounts_or_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    for name in ("API_KEY", "AUTH_MODE", "HOST"):
        monkeypatch.delenv(f"LEGAL_ASSISTANT_{name}", raising=False)
    monkeypatch.setenv("LEGAL_ASSISTANT_CONFIG_FILE", str(tmp_path / "absent.toml"))

    from legal_assistant.config import Settings

    with pytest.raises(ValidationError, match="AUTH_MODE=accounts"):
        Settings(host="0.0.0.0", data_dir=tmp_path)
    assert Settings(host="0.0.0.0", data_dir=tmp_path, auth_mode="accounts").auth_mode == "accounts"
    assert Settings(host="0.0.0.0", data_dir=tmp_path, api_key="k" * 32).auth_mode == "none"
