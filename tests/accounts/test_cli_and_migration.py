"""`legal-assistant users …` and `legal-assistant audit` as an administrator runs them
(real subprocesses), with the backend stopped (straight on the data directory, under its
lock) and running (through its API with the CLI token); and the migration of a
single-user data directory: what was made before accounts belongs to the first admin,
nothing is lost, and colleagues see none of it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from accounts_helpers import accounts_settings, add_user, anonymous, fake_model, signed_in

from app_harness import serve_app

PASSWORD = "le mot de passe du cabinet"


def cli_env(settings_root: Path, port: int | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        LEGAL_ASSISTANT_DATA_DIR=str(settings_root / "data"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(settings_root / "absent.toml"),
        LEGAL_ASSISTANT_AUTH_MODE="accounts",
        LEGAL_ASSISTANT_HOST="127.0.0.1",
        LEGAL_ASSISTANT_PORT=str(port or 9),
    )
    return env


async def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI in a thread: the backend under test serves in this event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "legal_assistant.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_users_cli_with_the_backend_down_then_up(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    added = await cli(
        env, "users", "add", "Root", "--admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    assert "admin root added" in added.stderr
    # The password given on stdin works through the API once the backend runs.
    settings = accounts_settings(tmp_path)
    async with serve_app(settings) as app:
        port = int(app.url.rsplit(":", 1)[1])
        env = cli_env(tmp_path, port)
        assert (settings.data_dir / "cli-token").stat().st_mode & 0o077 == 0
        async with signed_in(app, "root", PASSWORD) as root:
            assert (await root.get("/api/auth/me")).json()["user"]["role"] == "admin"
        # Backend up: the data directory is locked, the CLI goes through the API.
        added = await cli(env, "users", "add", "alice", "--password-stdin", stdin=PASSWORD)
        assert added.returncode == 0, added.stderr
        async with signed_in(app, "alice", PASSWORD) as alice:
            changed = await cli(
                env, "users", "passwd", "alice", "--password-stdin", stdin="un autre mot de passe"
            )
            assert changed.returncode == 0, changed.stderr
            assert (await alice.get("/api/auth/me")).status_code == 401  # sessions ended
        disabled = await cli(env, "users", "disable", "alice")
        assert disabled.returncode == 0, disabled.stderr
        async with anonymous(app) as client:
            resp = await client.post(
                "/api/auth/login", json={"username": "alice", "password": "un autre mot de passe"}
            )
            assert resp.status_code == 401
    # Backend down again: the CLI token is gone, the CLI opens the data directory itself.
    assert not (settings.data_dir / "cli-token").exists()
    listed = await cli(cli_env(tmp_path), "users", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if "│" in line}
    assert set(rows) == {"root", "alice"}  # the user added through the API is there
    assert "yes" in rows["alice"] and "yes" not in rows["root"]  # and disabled
    log = await cli(cli_env(tmp_path), "audit", "--user", "alice")
    assert log.returncode == 0 and "failed" in log.stdout, log.stdout


async def test_a_single_user_data_dir_is_adopted_by_the_first_admin(tmp_path: Path) -> None:
    model = f"mlx:{fake_model(tmp_path)}"
    single = accounts_settings(tmp_path, auth_mode="none")
    async with serve_app(single) as app:
        made = await app.client.post("/api/dossiers", json={"name": "Succession Martin"})
        assert made.status_code == 201
        dossier_id = made.json()["id"]
        turn = await app.chat(message="Bonjour", model_id=model)
        loose_conversation = turn.conversation_id
        turn = await app.chat(message="Et le bail ?", model_id=model, dossier_id=dossier_id)
        assert turn.status_code == 200, turn.body
        grounded_conversation = turn.conversation_id
    # Accounts on, no user yet: the data waits, visible to nobody.
    async with serve_app(accounts_settings(tmp_path)) as app:
        async with anonymous(app) as client:
            assert (await client.get("/api/dossiers")).status_code == 401
        port = int(app.url.rsplit(":", 1)[1])
        env = cli_env(tmp_path, port)
        added = await cli(
            env, "users", "add", "root", "--admin", "--password-stdin", stdin=PASSWORD
        )
        assert added.returncode == 0, added.stderr
        await add_user(app, "bob", password=PASSWORD)
        async with signed_in(app, "root", PASSWORD) as root, signed_in(app, "bob", PASSWORD) as bob:
            dossiers = (await root.get("/api/dossiers")).json()["dossiers"]
            assert [d["name"] for d in dossiers] == ["Succession Martin"]
            members = (await root.get(f"/api/dossiers/{dossier_id}/members")).json()
            assert members["owner"]["username"] == "root"
            conversations = {c["id"] for c in (await root.get("/api/conversations")).json()}
            assert conversations == {loose_conversation, grounded_conversation}
            detail = (await root.get(f"/api/conversations/{grounded_conversation}")).json()
            assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
            # Bob, a member, sees none of it.
            assert (await bob.get("/api/dossiers")).json()["dossiers"] == []
            assert (await bob.get("/api/conversations")).json() == []
            assert (await bob.get(f"/api/dossiers/{dossier_id}")).status_code == 404
    # And back to single-user mode: everything is still there for the local user.
    async with serve_app(single) as app:
        assert len((await app.client.get("/api/dossiers")).json()["dossiers"]) == 1
        assert len((await app.client.get("/api/conversations")).json()) == 2


def test_a_short_password_is_refused_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    import typer

    from legal_assistant.cli.users import read_password

    monkeypatch.setattr("sys.stdin", io.StringIO("court\n"))
    with pytest.raises(typer.Exit):
        read_password(True, 12)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert read_password(True, 12) == PASSWORD  # the newline is not part of it
