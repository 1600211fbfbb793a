"""Conversation history."""

from __future__ import annotations

from fastapi import APIRouter, Query

from legal_assistant.api.deps import ApiKey, State
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store import (
    ConversationDetail,
    ConversationPublic,
    delete_conversation,
    get_conversation,
    list_conversations,
)

router = APIRouter(dependencies=[ApiKey])


def _not_found(conversation_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"conversation {conversation_id[:64]!r}",
        message_fr="❌ Conversation introuvable.",
        message_en="❌ Conversation not found.",
    )


@router.get("/api/conversations")
async def conversations(
    state: State, limit: int = Query(100, ge=1, le=1000)
) -> list[ConversationPublic]:
    return await list_conversations(state.db, limit=limit)


@router.get("/api/conversations/{conversation_id}")
async def conversation(conversation_id: str, state: State) -> ConversationDetail:
    detail = await get_conversation(state.db, conversation_id)
    if detail is None:
        raise _not_found(conversation_id)
    return detail


@router.delete("/api/conversations/{conversation_id}")
async def remove_conversation(conversation_id: str, state: State) -> dict[str, bool]:
    if not await delete_conversation(state.db, conversation_id):
        raise _not_found(conversation_id)
    return {"deleted": True}
