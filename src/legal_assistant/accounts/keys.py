"""Scoped API keys: `la-<id>.<secret>`, shown once at creation, stored as the SHA-256 of
the secret.

Why SHA-256 and not Argon2 as for passwords: the secret is 256 random bits, so there is
no dictionary to try and a fast hash loses nothing, while every gateway request checks
a key and must not pay ~50 ms of Argon2 for it. The id half finds the row; the secret
half is compared in constant time.

A key acts as its user, within its scopes (`gateway`: /v1, /v1/messages, /ollama;
`read`: the rest of the API with GET; `write`: the rest with other methods), for the
models of its allowlist (None = any), until `expires_at`, and while its tokens of the
UTC day stay under `daily_tokens` (counted from the engines' reported usage).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.accounts.users import UserRecord, get_user
from legal_assistant.store.records import is_valid_id, iso, new_id, record_key, rows, timestamp
from legal_assistant.store.surreal import Database

KEY_PREFIX = "la-"
KEY_TABLE = "api_key"
USAGE_TABLE = "key_usage"
KeyScope = Literal["gateway", "read", "write"]


class KeyPublic(BaseModel):
    id: str
    name: str
    user_id: str
    scopes: list[KeyScope]
    models: list[str] | None = None
    expires_at: str | None = None
    daily_tokens: int | None = None
    created_at: str
    last_used_at: str | None = None
    tokens_today: int = 0
    requests_today: int = 0


def _rid(key_id: str) -> RecordID:
    return RecordID(KEY_TABLE, key_id)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _to_key(row: Mapping[str, Any], usage: Mapping[str, Any] | None = None) -> KeyPublic:
    return KeyPublic(
        id=record_key(row["id"]),
        name=row["name"],
        user_id=row["user_id"],
        scopes=list(row.get("scopes") or []),
        models=list(row["models"]) if row.get("models") is not None else None,
        expires_at=iso(row["expires_at"]) if row.get("expires_at") is not None else None,
        daily_tokens=row.get("daily_tokens"),
        created_at=iso(row.get("created_at")),
        last_used_at=iso(row["last_used_at"]) if row.get("last_used_at") is not None else None,
        tokens_today=int((usage or {}).get("tokens", 0)),
        requests_today=int((usage or {}).get("requests", 0)),
    )


async def create_key(
    db: Database,
    *,
    user_id: str,
    name: str,
    scopes: list[KeyScope],
    models: list[str] | None,
    expires_at: datetime | None,
    daily_tokens: int | None,
) -> tuple[KeyPublic, str]:
    """(the key's record, the key itself — shown once, never stored)."""
    key_id = new_id()
    secret = secrets.token_urlsafe(32)
    data = {
        "user_id": user_id,
        "name": name,
        "secret_hash": _digest(secret),
        "scopes": sorted(set(scopes)),
        "models": models,
        "expires_at": expires_at,
        "daily_tokens": daily_tokens,
        "created_at": timestamp(),
    }
    results = await db.query("CREATE $id CONTENT $data", {"id": _rid(key_id), "data": data})
    return _to_key(rows(results[-1])[0]), f"{KEY_PREFIX}{key_id}.{secret}"


async def _usage(db: Database, key_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not key_ids:
        return {}
    results = await db.query(
        "SELECT * FROM key_usage WHERE key_id IN $ids AND day = $day",
        {"ids": key_ids, "day": today()},
    )
    return {str(r["key_id"]): r for r in rows(results[-1])}


async def list_keys(db: Database, *, user_id: str | None) -> list[KeyPublic]:
    """The user's keys (all users' for `user_id=None`), with today's usage."""
    where = " WHERE user_id = $user" if user_id is not None else ""
    results = await db.query(
        f"SELECT * FROM api_key{where} ORDER BY created_at DESC", {"user": user_id}
    )
    found = rows(results[-1])
    usage = await _usage(db, [record_key(r["id"]) for r in found])
    return [_to_key(r, usage.get(record_key(r["id"]))) for r in found]


async def get_key(db: Database, key_id: str) -> KeyPublic | None:
    if not is_valid_id(key_id):
        return None
    found = rows((await db.query("SELECT * FROM $id", {"id": _rid(key_id)}))[-1])
    if not found:
        return None
    usage = await _usage(db, [key_id])
    return _to_key(found[0], usage.get(key_id))


async def delete_key(db: Database, key_id: str) -> bool:
    if not is_valid_id(key_id):
        return False
    results = await db.query("DELETE $id RETURN BEFORE", {"id": _rid(key_id)})
    return bool(rows(results[-1]))


async def authenticate(db: Database, key: str) -> tuple[KeyPublic, UserRecord] | None:
    """The key and its (enabled) user, or None: unknown, wrong secret, expired, or its
    user disabled."""
    key_id, _, secret = key.removeprefix(KEY_PREFIX).partition(".")
    if not is_valid_id(key_id) or not secret or len(secret) > 128:
        return None
    found = rows((await db.query("SELECT * FROM $id", {"id": _rid(key_id)}))[-1])
    if not found:
        return None
    row = found[0]
    if not hmac.compare_digest(_digest(secret), str(row["secret_hash"])):
        return None
    expires = row.get("expires_at")
    if expires is not None and expires <= timestamp():
        return None
    user = await get_user(db, str(row["user_id"]))
    if user is None or user.disabled:
        return None
    usage = await _usage(db, [key_id])
    return _to_key(row, usage.get(key_id)), user


async def add_usage(db: Database, key_id: str, tokens: int) -> None:
    """Count one request and its tokens against the key's UTC day."""
    day = today()
    await db.query(
        "UPSERT $id SET key_id = $key, day = $day, tokens += $tokens, requests += 1 RETURN NONE;"
        " UPDATE $key_rid SET last_used_at = $now RETURN NONE;",
        {
            "id": RecordID(USAGE_TABLE, f"{key_id}_{day}"),
            "key": key_id,
            "day": day,
            "tokens": max(0, int(tokens)),
            "key_rid": _rid(key_id),
            "now": timestamp(),
        },
    )
