"""Scoped API keys: `POST /api/keys` (the key shown once), `GET /api/keys` (with today's
usage), `DELETE /api/keys/{id}`. docs/accounts.md#api-keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from legal_assistant.accounts import keys
from legal_assistant.accounts.keys import KeyPublic, KeyScope
from legal_assistant.accounts.policy import CurrentPrincipal, forbidden, note
from legal_assistant.accounts.users import get_user
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.errors import LegalAssistantError

router = APIRouter(dependencies=[ApiKey])


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[KeyScope] = Field(min_length=1, max_length=3)
    models: list[str] | None = Field(default=None, max_length=200)
    expires_at: datetime | None = None
    daily_tokens: int | None = Field(default=None, ge=1)


class KeyCreated(KeyPublic):
    key: str  # shown once: only its hash is stored


class KeyList(BaseModel):
    keys: list[KeyPublic]


def key_not_found(key_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"key {key_id[:64]!r}",
        message_fr="❌ Clé d'API introuvable.",
        message_en="❌ API key not found.",
    )


@router.post("/api/keys", status_code=201)
async def create_key(
    body: KeyIn, request: Request, principal: CurrentPrincipal, state: State
) -> KeyCreated:
    """A key for the signed-in user. Not with a key (a key must not mint itself wider
    ones), nor as the CLI or API_KEY administrators (no user to act as)."""
    if principal.key_id is not None:
        await note(request, "denied", "key.create")
        raise forbidden("keys are created from a session, not with another key")
    if await get_user(state.db, principal.user_id) is None:
        raise LegalAssistantError(
            "bad_request",
            f"{principal.username} is not a user account",
            message_fr="❌ Créez les clés depuis un compte utilisateur.",
            message_en="❌ Create keys from a user account.",
        )
    expires = body.expires_at
    if expires is not None:
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            raise LegalAssistantError("bad_request", "expires_at is in the past")
    names = (
        sorted({m.strip() for m in body.models if m.strip()}) if body.models is not None else None
    )
    record, secret = await keys.create_key(
        state.db,
        user_id=principal.user_id,
        name=" ".join(body.name.split()) or "key",
        scopes=body.scopes,
        models=names,
        expires_at=expires,
        daily_tokens=body.daily_tokens,
    )
    await note(request, "ok", "key.create")
    return KeyCreated(**record.model_dump(), key=secret)


@router.get("/api/keys")
async def list_keys(
    principal: CurrentPrincipal,
    state: State,
    all_users: Annotated[bool, Query(alias="all")] = False,
) -> KeyList:
    """One's own keys with today's usage; admins with `?all=true`: everyone's."""
    if all_users and not principal.is_admin:
        raise forbidden("administrators only")
    owner = None if all_users else principal.user_id
    return KeyList(keys=await keys.list_keys(state.db, user_id=owner))


@router.delete("/api/keys/{key_id}")
async def delete_key(
    key_id: str, request: Request, principal: CurrentPrincipal, state: State
) -> dict[str, bool]:
    """The key's user or an admin; someone else's key answers 404."""
    found = await keys.get_key(state.db, key_id)
    if found is None or not (principal.is_admin or found.user_id == principal.user_id):
        if found is not None:
            await note(request, "denied", "key.delete")
        raise key_not_found(key_id)
    await keys.delete_key(state.db, key_id)
    await note(request, "ok", "key.delete")
    return {"deleted": True}
