"""Server-side sessions in SurrealDB: they survive a restart of the backend, end after
`SESSION_IDLE_S` without use, and are deleted on logout, password change or disable.

The cookie holds a random 256-bit token; the row is keyed by its SHA-256, so reading the
database (a backup, a stolen disk) gives no usable cookie. Each session has its own CSRF
token, returned at login and required in `X-CSRF-Token` on state-changing requests that
authenticate by cookie (accounts/gate.py).

`last_seen` is written at most once a minute per session: the idle expiry needs minutes,
not one database write per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from surrealdb import RecordID

from legal_assistant.accounts.users import UserRecord, get_user
from legal_assistant.store.records import rows, timestamp
from legal_assistant.store.surreal import Database

SESSION_TABLE = "session"
COOKIE_NAME = "la_session"
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user: UserRecord
    csrf_token: str


def _rid(token: str) -> RecordID:
    return RecordID(SESSION_TABLE, hashlib.sha256(token.encode()).hexdigest())


async def open_session(db: Database, user_id: str) -> tuple[str, str]:
    """A new session for the user: (cookie token, CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = timestamp()
    await db.query(
        "CREATE $id CONTENT $data RETURN NONE",
        {
            "id": _rid(token),
            "data": {"user_id": user_id, "csrf_token": csrf, "created_at": now, "last_seen": now},
        },
    )
    return token, csrf


async def find_session(db: Database, token: str, idle_s: float) -> Session | None:
    """The live session for this cookie token, or None (unknown, idle too long — then it
    is deleted —, or its user is gone or disabled)."""
    if not token or len(token) > 128:
        return None
    rid = _rid(token)
    found = rows((await db.query("SELECT * FROM $id", {"id": rid}))[-1])
    if not found:
        return None
    row = found[0]
    now = timestamp()
    last_seen = row["last_seen"]
    if now - last_seen > timedelta(seconds=idle_s):
        await db.query("DELETE $id", {"id": rid})
        return None
    user = await get_user(db, str(row["user_id"]))
    if user is None or user.disabled:
        return None
    if now - last_seen > _TOUCH_EVERY:
        await db.query("UPDATE $id SET last_seen = $now RETURN NONE", {"id": rid, "now": now})
    return Session(str(rid.id), user, str(row["csrf_token"]))


async def close_session(db: Database, token: str) -> None:
    await db.query("DELETE $id", {"id": _rid(token)})


async def close_sessions_of(db: Database, user_id: str) -> None:
    await db.query("DELETE session WHERE user_id = $key", {"key": user_id})
