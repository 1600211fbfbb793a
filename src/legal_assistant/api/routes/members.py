"""Sharing a dossier: `GET /api/dossiers/{id}/members`, `PUT /api/dossiers/{id}/members`
(the owner or an admin; readers and editors get 403). docs/accounts.md."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from legal_assistant.accounts import ownership
from legal_assistant.accounts.ownership import DossierRole, MemberRole, Members
from legal_assistant.accounts.policy import DossierOwner, DossierRead, role_in_dossier
from legal_assistant.accounts.users import find_user
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.errors import LegalAssistantError

router = APIRouter(dependencies=[ApiKey])


class MemberIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: MemberRole


class MembersIn(BaseModel):
    members: list[MemberIn] = Field(max_length=500)


class Access(BaseModel):
    """What the caller may do in the dossier (for a UI to show or hide its controls)."""

    role: DossierRole  # admins: "owner"
    can_edit: bool  # upload and delete documents
    can_share: bool  # rename, delete, share


@router.get("/api/dossiers/{dossier_id}/access")
async def dossier_access(dossier: DossierRead, request: Request) -> Access:
    role = await role_in_dossier(request, dossier.id)
    assert role is not None  # DossierRead let the caller in
    return Access(role=role, can_edit=role in ("owner", "editor"), can_share=role == "owner")


@router.get("/api/dossiers/{dossier_id}/members")
async def dossier_members(dossier: DossierOwner, state: State) -> Members:
    return await ownership.members(state.db, dossier.id)


@router.put("/api/dossiers/{dossier_id}/members")
async def share_dossier(dossier: DossierOwner, body: MembersIn, state: State) -> Members:
    """The dossier's members become exactly this list (an empty list unshares it). The
    owner stays the owner and is not listed; an unknown or disabled user is refused."""
    current = await ownership.members(state.db, dossier.id)
    owner_id = current.owner.user_id if current.owner else None
    wanted: dict[str, MemberRole] = {}
    for member in body.members:
        user = await find_user(state.db, member.username)
        if user is None or user.disabled:
            raise LegalAssistantError(
                "bad_request",
                f"unknown user {member.username[:64]!r}",
                message_fr=f"❌ Utilisateur inconnu : {member.username[:64]}.",
                message_en=f"❌ Unknown user: {member.username[:64]}.",
            )
        if user.id != owner_id:
            wanted[user.id] = member.role
    await ownership.replace_members(state.db, dossier.id, sorted(wanted.items()))
    return await ownership.members(state.db, dossier.id)
