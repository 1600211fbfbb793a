"""POST /api/chat/stream — one chat turn as server-sent events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from legal_assistant.accounts.policy import ChatAccess
from legal_assistant.accounts.principal import principal_of
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.api.sse import sse
from legal_assistant.chat.turn import ChatRequest

# ChatAccess: the conversation continued must be the caller's, the dossier readable.
router = APIRouter(dependencies=[ApiKey, ChatAccess])


@router.post("/api/chat/stream", response_class=EventSourceResponse)
async def chat_stream(body: ChatRequest, state: State, request: Request) -> EventSourceResponse:
    """Events: `meta`, `status`*, `token`*, then `done` or `error`. A request that can be
    refused is refused here with a 4xx JSON error, before anything is saved or started."""
    if "language" in body.model_fields_set:  # a refusal speaks the turn's language
        request.state.language = body.language
    turn = await state.chat.prepare(body, user_id=principal_of(request).user_id)
    return sse(state.chat.stream(turn), send_timeout=state.settings.stream_send_timeout_s)
