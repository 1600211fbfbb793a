"""Who owns and who may use a dossier or a conversation (the queries behind the policy).

A dossier has one owner (`dossier.owner_id`) and members (`dossier_member`: editor or
reader). A conversation belongs to its author (`conversation.owner_id`). The decisions
(who may do what, 404 or 403) are in accounts/policy.py, not here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.accounts.users import users_by_id
from legal_assistant.store.records import is_valid_id, rows
from legal_assistant.store.surreal import Database

MemberRole = Literal["editor", "reader"]
DossierRole = Literal["owner", "editor", "reader"]


class Member(BaseModel):
    user_id: str
    username: str
    role: MemberRole


class Owner(BaseModel):
    user_id: str
    username: str


class Members(BaseModel):
    owner: Owner | None
    members: list[Member]


async def dossier_role(db: Database, dossier_id: str, user_id: str) -> DossierRole | None:
    """The user's role in the dossier; None when they have none or it does not exist."""
    if not is_valid_id(dossier_id):
        return None
    results = await db.query(
        "SELECT owner_id, (SELECT VALUE role FROM dossier_member"
        " WHERE dossier_id = $key AND user_id = $user) AS roles FROM $id",
        {"id": RecordID("dossier", dossier_id), "key": dossier_id, "user": user_id},
    )
    found = rows(results[-1])
    if not found:
        return None
    if found[0].get("owner_id") == user_id:
        return "owner"
    roles = found[0].get("roles") or []
    if "editor" in roles:
        return "editor"
    return "reader" if "reader" in roles else None


async def set_dossier_owner(db: Database, dossier_id: str, user_id: str) -> None:
    await db.query(
        "UPDATE $id SET owner_id = $user RETURN NONE",
        {"id": RecordID("dossier", dossier_id), "user": user_id},
    )


async def conversation_owner(
    db: Database, conversation_id: str
) -> tuple[str | None, str | None] | None:
    """(owner id, dossier id) of the conversation, or None when it does not exist."""
    if not is_valid_id(conversation_id):
        return None
    results = await db.query(
        "SELECT owner_id, dossier_id FROM $id", {"id": RecordID("conversation", conversation_id)}
    )
    found = rows(results[-1])
    if not found:
        return None
    return found[0].get("owner_id"), found[0].get("dossier_id")


async def set_conversation_owner(db: Database, conversation_id: str, user_id: str) -> None:
    await db.query(
        "UPDATE $id SET owner_id = $user RETURN NONE",
        {"id": RecordID("conversation", conversation_id), "user": user_id},
    )


async def visible_dossier_ids(db: Database, user_id: str) -> list[str]:
    """The dossiers the user owns or is a member of (the filter of every dossier list)."""
    results = await db.query(
        "SELECT VALUE meta::id(id) FROM dossier WHERE owner_id = $user;"
        " SELECT VALUE dossier_id FROM dossier_member WHERE user_id = $user;",
        {"user": user_id},
    )
    return sorted({str(v) for r in results for v in (r or [])})


async def members(db: Database, dossier_id: str) -> Members:
    results = await db.query(
        "SELECT VALUE owner_id FROM $id;"
        " SELECT user_id, role FROM dossier_member WHERE dossier_id = $key;",
        {"id": RecordID("dossier", dossier_id), "key": dossier_id},
    )
    owner_ids = [str(v) for v in (results[0] or []) if v]
    member_rows = rows(results[1])
    names = await users_by_id(db, owner_ids + [str(r["user_id"]) for r in member_rows])
    owner = (
        Owner(user_id=owner_ids[0], username=names[owner_ids[0]].username)
        if owner_ids and owner_ids[0] in names
        else None
    )
    listed = [
        Member(
            user_id=str(r["user_id"]), username=names[str(r["user_id"])].username, role=r["role"]
        )
        for r in member_rows
        if str(r["user_id"]) in names
    ]
    return Members(owner=owner, members=sorted(listed, key=lambda m: m.username))


async def replace_members(db: Database, dossier_id: str, new: list[tuple[str, MemberRole]]) -> None:
    """The dossier's members become exactly `new` (user id, role), in one transaction."""
    await db.query(
        "BEGIN TRANSACTION;"
        " DELETE dossier_member WHERE dossier_id = $key;"
        " FOR $m IN $members { CREATE dossier_member CONTENT"
        " { dossier_id: $key, user_id: $m.user_id, role: $m.role } };"
        " COMMIT TRANSACTION;",
        {"key": dossier_id, "members": [{"user_id": u, "role": r} for u, r in new]},
    )


async def forget_dossier(db: Database, dossier_id: str) -> None:
    """A deleted dossier's memberships go with it."""
    await db.query("DELETE dossier_member WHERE dossier_id = $key", {"key": dossier_id})
