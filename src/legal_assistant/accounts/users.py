"""Users: create, find, list, change (role, disabled, password).

A username is 2-64 characters of `a-z 0-9 . _ -`, compared in lower case. Disabling a
user or changing their password ends their sessions (accounts/sessions.py) in the same
call, so a stolen cookie dies with the password it was obtained with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.accounts import passwords
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store.records import is_valid_id, iso, new_id, record_key, rows, timestamp
from legal_assistant.store.surreal import Database, DatabaseError

USER_TABLE = "user"
UserRole = Literal["admin", "member"]
_USERNAME = re.compile(r"\A[a-z0-9][a-z0-9._-]{1,63}\Z")


class UserPublic(BaseModel):
    id: str
    username: str
    role: UserRole
    disabled: bool = False
    created_at: str = ""


class UserRecord(UserPublic):
    """With the hash: never leaves the accounts package."""

    password_hash: str


def user_rid(user_id: str) -> RecordID:
    return RecordID(USER_TABLE, user_id)


def clean_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise LegalAssistantError(
            "bad_request",
            "username: 2-64 characters among a-z 0-9 . _ -",
            message_fr="❌ Nom d'utilisateur invalide : 2 à 64 caractères parmi a-z 0-9 . _ -",
            message_en="❌ Invalid username: 2-64 characters among a-z 0-9 . _ -",
        )
    return name


def _to_record(row: Mapping[str, Any]) -> UserRecord:
    return UserRecord(
        id=record_key(row["id"]),
        username=row["username"],
        role=row["role"],
        disabled=bool(row.get("disabled", False)),
        created_at=iso(row.get("created_at")),
        password_hash=row["password_hash"],
    )


def public(user: UserRecord) -> UserPublic:
    return UserPublic(**user.model_dump(exclude={"password_hash"}))


async def create_user(
    db: Database, *, username: str, password: str, role: UserRole, min_password_chars: int
) -> UserPublic:
    name = clean_username(username)
    passwords.check_strength(password, min_password_chars)
    data = {
        "username": name,
        "password_hash": await passwords.hash_password(password),
        "role": role,
        "disabled": False,
        "created_at": timestamp(),
    }
    try:
        results = await db.query(
            "CREATE $id CONTENT $data", {"id": user_rid(new_id()), "data": data}
        )
    except DatabaseError as exc:
        if any("user_username" in e or "already contains" in e for e in exc.statement_errors):
            raise LegalAssistantError("conflict", f"user {name!r} exists") from None
        raise
    return public(_to_record(rows(results[-1])[0]))


async def get_user(db: Database, user_id: str) -> UserRecord | None:
    if not is_valid_id(user_id):
        return None
    found = rows((await db.query("SELECT * FROM $id", {"id": user_rid(user_id)}))[-1])
    return _to_record(found[0]) if found else None


async def find_user(db: Database, username: str) -> UserRecord | None:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        return None
    results = await db.query("SELECT * FROM user WHERE username = $name LIMIT 1", {"name": name})
    found = rows(results[-1])
    return _to_record(found[0]) if found else None


async def list_users(db: Database) -> list[UserPublic]:
    results = await db.query("SELECT * FROM user ORDER BY username ASC")
    return [public(_to_record(r)) for r in rows(results[-1])]


async def users_by_id(db: Database, user_ids: list[str]) -> dict[str, UserPublic]:
    valid = [user_rid(u) for u in user_ids if is_valid_id(u)]
    if not valid:
        return {}
    results = await db.query("SELECT * FROM user WHERE id IN $ids", {"ids": valid})
    return {u.id: u for u in (public(_to_record(r)) for r in rows(results[-1]))}


async def count_users(db: Database) -> int:
    results = await db.query("SELECT count() AS n FROM user GROUP ALL")
    found = rows(results[-1])
    return int(found[0]["n"]) if found else 0


async def first_admin(db: Database) -> UserPublic | None:
    """The earliest-created admin that is not disabled: the owner of what the single-user
    installation made before accounts were turned on."""
    results = await db.query(
        "SELECT * FROM user WHERE role = 'admin' AND disabled = false"
        " ORDER BY created_at ASC LIMIT 1"
    )
    found = rows(results[-1])
    return public(_to_record(found[0])) if found else None


async def update_user(
    db: Database,
    user_id: str,
    *,
    role: UserRole | None = None,
    disabled: bool | None = None,
    password: str | None = None,
    min_password_chars: int = 12,
) -> UserPublic | None:
    """Change what is given; a password change or a disable ends the user's sessions."""
    if not is_valid_id(user_id):
        return None
    changes: dict[str, Any] = {}
    if role is not None:
        changes["role"] = role
    if disabled is not None:
        changes["disabled"] = disabled
    if password is not None:
        passwords.check_strength(password, min_password_chars)
        changes["password_hash"] = await passwords.hash_password(password)
    statements = ["UPDATE $id MERGE $changes RETURN AFTER"]
    if password is not None or disabled:
        statements.append("DELETE session WHERE user_id = $key")
    results = await db.query(
        "BEGIN TRANSACTION; " + "; ".join(statements) + "; COMMIT TRANSACTION;",
        {"id": user_rid(user_id), "changes": changes, "key": user_id},
    )
    found = rows(results[0])
    return public(_to_record(found[0])) if found else None


async def set_password_hash(db: Database, user_id: str, password_hash: str) -> None:
    """A transparent rehash at login (parameters raised since the hash was made): the
    sessions stay, the password did not change."""
    await db.query(
        "UPDATE $id SET password_hash = $hash RETURN NONE",
        {"id": user_rid(user_id), "hash": password_hash},
    )
