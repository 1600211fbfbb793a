"""Conversation history."""

from __future__ import annotations

from fastapi import APIRouter, Query

from legal_assistant.accounts.policy import (
    ConversationOwn,
    CurrentPrincipal,
    conversation_not_found,
    conversation_owner_filter,
)
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.store import (
    ConversationDetail,
    ConversationPublic,
    delete_conversation,
    get_conversation,
    list_conversations,
)

router = APIRouter(dependencies=[ApiKey])


@router.get("/api/conversations")
async def conversations(
    state: State, principal: CurrentPrincipal, limit: int = Query(100, ge=1, le=1000)
) -> list[ConversationPublic]:
    """The caller's conversations (admins: everyone's)."""
    return await list_conversations(
        state.db, limit=limit, owner_id=conversation_owner_filter(principal)
    )


@router.get("/api/conversations/{conversation_id}")
async def conversation(conversation_id: ConversationOwn, state: State) -> ConversationDetail:
    detail = await get_conversation(state.db, conversation_id)
    if detail is None:
        raise conversation_not_found(conversation_id)
    return detail


@router.delete("/api/conversations/{conversation_id}")
async def remove_conversation(conversation_id: ConversationOwn, state: State) -> dict[str, bool]:
    if not await delete_conversation(state.db, conversation_id):
        raise conversation_not_found(conversation_id)
    return {"deleted": True}
