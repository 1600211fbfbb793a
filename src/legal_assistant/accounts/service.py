"""The accounts service the app holds for its lifetime: logins (throttled, constant-time),
who a credential is, and the local CLI token.

Credentials, in the order they are tried (accounts mode):
1. `Authorization: Bearer <secret>` or `X-API-Key: <secret>`:
   * a scoped API key (`la-<id>.<secret>`, accounts/keys.py) → its user, within its scopes;
   * the CLI token (`<data dir>/cli-token`, written at start-up, readable by the backend's
     OS user only) → the admin `cli`: the terminal on the server is as trusted as direct
     access to the data directory, which it has anyway;
   * the single `API_KEY` of the settings (scripts of the single-user era) → the admin
     `api-key`. Set it only if those scripts must keep working.
2. The session cookie → its user (a CSRF token is then required on state-changing
   requests; the gate checks it).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from legal_assistant.accounts import audit, keys, migration, passwords, sessions
from legal_assistant.accounts.principal import ALL_SCOPES, Principal
from legal_assistant.accounts.throttle import LoginThrottle
from legal_assistant.accounts.users import UserRecord, find_user, public, set_password_hash
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store.surreal import Database

log = logging.getLogger("legal_assistant.accounts")

CLI_TOKEN_FILE = "cli-token"
CLI_PRINCIPAL = Principal(user_id="cli", username="cli", role="admin")
API_KEY_PRINCIPAL = Principal(user_id="api-key", username="api-key", role="admin")


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a request is, and how it proved it (the gate needs both: CSRF applies to
    cookies only)."""

    principal: Principal
    session: sessions.Session | None = None
    key: keys.KeyPublic | None = None  # with today's usage, for the daily quota


def cli_token_path(data_dir: Path) -> Path:
    return data_dir / CLI_TOKEN_FILE


def read_cli_token(data_dir: Path) -> str | None:
    try:
        return cli_token_path(data_dir).read_text().strip() or None
    except OSError:
        return None


class Accounts:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.enabled = settings.auth_mode == "accounts"
        self.throttle = LoginThrottle(settings.login_window_s, settings.login_max_failures)
        self._cli_token: str | None = None

    async def start(self) -> None:
        """Accounts mode: adopt what the single-user installation made (if an admin
        exists), and write a fresh CLI token (0600)."""
        if not self.enabled:
            return
        await migration.adopt_orphans(self.db)
        token = secrets.token_urlsafe(32)
        path = cli_token_path(self.settings.data_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        self._cli_token = token

    def close(self) -> None:
        if self._cli_token is not None:
            with contextlib.suppress(OSError):
                cli_token_path(self.settings.data_dir).unlink()
            self._cli_token = None

    async def login(
        self, username: str, password: str, address: str
    ) -> tuple[UserRecord, str, str]:
        """(user, cookie token, CSRF token), or `login_failed` / `too_many_attempts`."""
        self.throttle.check(username, address)
        user = await find_user(self.db, username)
        live = user is not None and not user.disabled
        ok = await passwords.verify_password(
            user.password_hash if live and user else None, password
        )
        if not ok or user is None:
            self.throttle.failed(username, address)
            await audit.record(
                self.db,
                user=username[:64],
                action="login",
                resource="",
                outcome="failed",
                address=address,
            )
            raise LegalAssistantError("login_failed")
        self.throttle.succeeded(username)
        if passwords.needs_rehash(user.password_hash):
            await set_password_hash(self.db, user.id, await passwords.hash_password(password))
        token, csrf = await sessions.open_session(self.db, user.id)
        await audit.record(
            self.db,
            user=user.username,
            action="login",
            resource="",
            outcome="ok",
            address=address,
        )
        return user, token, csrf

    async def from_bearer(self, secret: str) -> Credential | None:
        if secret.startswith(keys.KEY_PREFIX):
            found = await keys.authenticate(self.db, secret)
            if found is None:
                return None
            key, user = found
            return Credential(
                Principal(
                    user_id=user.id,
                    username=user.username,
                    role=user.role,
                    key_id=key.id,
                    scopes=frozenset(key.scopes),
                    models=frozenset(key.models) if key.models is not None else None,
                ),
                key=key,
            )
        if self._cli_token and hmac.compare_digest(secret.encode(), self._cli_token.encode()):
            return Credential(CLI_PRINCIPAL)
        expected = self.settings.api_key
        if expected and hmac.compare_digest(secret.encode(), expected.encode()):
            return Credential(API_KEY_PRINCIPAL)
        return None

    async def from_cookie(self, token: str) -> Credential | None:
        session = await sessions.find_session(self.db, token, self.settings.session_idle_s)
        if session is None:
            return None
        user = public(session.user)
        principal = Principal(
            user_id=user.id, username=user.username, role=user.role, scopes=ALL_SCOPES
        )
        return Credential(principal, session)
