"""Users (administrators only): `POST /api/users`, `GET /api/users`,
`PATCH /api/users/{id}` (role, disabled, password). docs/accounts.md."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from legal_assistant.accounts import migration
from legal_assistant.accounts.policy import Admin, note
from legal_assistant.accounts.users import (
    UserPublic,
    UserRole,
    create_user,
    get_user,
    list_users,
    update_user,
)
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.errors import LegalAssistantError

router = APIRouter(dependencies=[ApiKey, Admin])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: UserRole = "member"


class UserChange(BaseModel):
    role: UserRole | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class UserList(BaseModel):
    users: list[UserPublic]


def user_not_found(user_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"user {user_id[:64]!r}",
        message_fr="❌ Utilisateur introuvable.",
        message_en="❌ User not found.",
    )


@router.post("/api/users", status_code=201)
async def add_user(body: UserIn, request: Request, state: State) -> UserPublic:
    user = await create_user(
        state.db,
        username=body.username,
        password=body.password,
        role=body.role,
        min_password_chars=state.settings.min_password_chars,
    )
    if user.role == "admin":  # the first admin adopts the single-user installation's data
        await migration.adopt_orphans(state.db)
    await note(request, "ok", "user.create")
    return user


@router.get("/api/users")
async def users(state: State) -> UserList:
    return UserList(users=await list_users(state.db))


@router.patch("/api/users/{user_id}")
async def change_user(user_id: str, body: UserChange, request: Request, state: State) -> UserPublic:
    """A password change or a disable ends the user's sessions. The last enabled admin
    cannot be demoted or disabled (nobody could manage the server any more)."""
    user = await get_user(state.db, user_id)
    if user is None:
        raise user_not_found(user_id)
    losing_admin = user.role == "admin" and (body.role == "member" or body.disabled is True)
    if losing_admin and not user.disabled:
        admins = [u for u in await list_users(state.db) if u.role == "admin" and not u.disabled]
        if len(admins) <= 1:
            raise LegalAssistantError(
                "conflict",
                "the last administrator cannot be demoted or disabled",
                message_fr="❌ C'est le dernier administrateur : impossible de le rétrograder "
                "ou de le désactiver.",
                message_en="❌ This is the last administrator: it cannot be demoted or disabled.",
            )
    changed = await update_user(
        state.db,
        user_id,
        role=body.role,
        disabled=body.disabled,
        password=body.password,
        min_password_chars=state.settings.min_password_chars,
    )
    if changed is None:
        raise user_not_found(user_id)
    await note(request, "ok", "user.change")
    return changed
