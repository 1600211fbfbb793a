"""Helpers of the accounts tests: accounts-mode settings (the fake engine as every managed
engine — what is checked here is who may do what, not what a model answers), users made
straight in the app's database, and one signed-in HTTP client per user.

Imported as `accounts_helpers` (pytest puts this directory on sys.path; the basename is
unique in the tree).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from app_harness import RunningApp, fake_engine_command, fake_model_dir, make_settings
from legal_assistant.accounts.users import UserPublic, UserRole, create_user
from legal_assistant.config import Settings

PASSWORD = "correct horse battery staple"


def accounts_settings(root: Path, **overrides: Any) -> Settings:
    command = fake_engine_command()
    values: dict[str, Any] = {
        "auth_mode": "accounts",
        "engines_dir": root / "engines",
        "mlx_command": command,
        "llamacpp_command": command,
        "vllm_command": command,
        "load_timeout_s": 10.0,
        "drain_timeout_s": 5.0,
        "stop_grace_s": 1.0,
    }
    values.update(overrides)
    return make_settings(root, root / "models", **values)


def fake_model(root: Path, name: str = "fake-a", **knobs: Any) -> Path:
    return fake_model_dir(root, name, **{"token_rate": 0, "tokens": 4, **knobs})


async def add_user(
    app: RunningApp, username: str, role: UserRole = "member", password: str = PASSWORD
) -> UserPublic:
    return await create_user(
        app.state.db, username=username, password=password, role=role, min_password_chars=12
    )


@contextlib.asynccontextmanager
async def signed_in(
    app: RunningApp, username: str, password: str = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding `username`'s session cookie, sending its CSRF token."""
    async with httpx.AsyncClient(base_url=app.url, timeout=60, trust_env=False) as client:
        resp = await client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert resp.status_code == 200, resp.text
        client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        yield client


@contextlib.asynccontextmanager
async def anonymous(app: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.url, timeout=60, trust_env=False) as client:
        yield client
