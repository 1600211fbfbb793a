"""Dossiers: create, list, rename, delete; their search and their conversations.
Documents (upload, progress, pages, files) are in `documents.py` beside this module."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from legal_assistant.accounts import ownership
from legal_assistant.accounts.policy import (
    CurrentPrincipal,
    DossierOwner,
    DossierRead,
    VisibleDossiers,
    conversation_owner_filter,
    dossier_not_found,
)
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.chat.turn import Text
from legal_assistant.documents.ingest import IngestionService
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store import ConversationPublic, list_conversations
from legal_assistant.store import dossiers as store
from legal_assistant.store.dossiers import MAX_NAME_CHARS, DossierPublic

router = APIRouter(dependencies=[ApiKey])

Name = Annotated[Text, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class DossierIn(BaseModel):
    name: Name


class DossierList(BaseModel):
    dossiers: list[DossierPublic]


class SearchResult(BaseModel):
    passage_id: str
    document_id: str
    filename: str
    page: int
    paragraph: int | None = None
    label: str | None = None
    text: str
    score: float
    char_start: int
    char_end: int
    highlights: list[list[int]] = []
    relevant: bool = False


class SearchResponse(BaseModel):
    results: list[SearchResult]
    relevant: bool  # at least one result is over the calibrated relevance threshold


class ConversationList(BaseModel):
    conversations: list[ConversationPublic]


def ingestion(state: Any) -> IngestionService:
    service: IngestionService | None = state.ingestion
    if service is None:  # pragma: no cover - the lifespan always sets it
        raise LegalAssistantError("shutting_down")
    return service


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise LegalAssistantError(
            "bad_request",
            "blank dossier name",
            message_fr="❌ Donnez un nom au dossier.",
            message_en="❌ Give the dossier a name.",
        )
    return cleaned


@router.post("/api/dossiers", status_code=201)
async def create_dossier(
    body: DossierIn, state: State, principal: CurrentPrincipal
) -> DossierPublic:
    embedder = ingestion(state).library.embedder
    return await store.create_dossier(
        state.db,
        name=_clean_name(body.name),
        embedding_model=embedder.model_id,
        dimension=embedder.dimension,
        owner_id=principal.user_id,
    )


@router.get("/api/dossiers")
async def list_dossiers(state: State, visible: VisibleDossiers) -> DossierList:
    """The dossiers the caller owns or is a member of (admins: all)."""
    return DossierList(dossiers=await store.list_dossiers(state.db, only=visible))


@router.get("/api/dossiers/{dossier_id}")
async def get_dossier(dossier: DossierRead) -> DossierPublic:
    return dossier


@router.patch("/api/dossiers/{dossier_id}")
async def rename_dossier(dossier: DossierOwner, body: DossierIn, state: State) -> DossierPublic:
    renamed = await store.rename_dossier(state.db, dossier.id, _clean_name(body.name))
    if renamed is None:
        raise dossier_not_found(dossier.id)
    return renamed


@router.delete("/api/dossiers/{dossier_id}")
async def delete_dossier(dossier: DossierOwner, state: State) -> dict[str, bool]:
    """The dossier, its documents (files, passages, vectors) and its conversations."""
    if not await ingestion(state).delete_dossier(dossier.id):
        raise dossier_not_found(dossier.id)
    await ownership.forget_dossier(state.db, dossier.id)
    return {"deleted": True}


@router.get("/api/dossiers/{dossier_id}/search")
async def search_dossier(
    dossier: DossierRead,
    state: State,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResponse:
    """Hybrid search (keywords + embeddings) over the dossier's indexed documents."""
    dossier_id = dossier.id
    query = " ".join(q.split())
    if not query or "\x00" in query:
        raise LegalAssistantError(
            "bad_request",
            "empty query",
            message_fr="❌ La recherche est vide.",
            message_en="❌ The search is empty.",
        )
    found, relevant = await ingestion(state).library.search(dossier_id, query, k)
    return SearchResponse(results=[SearchResult(**f.to_dict()) for f in found], relevant=relevant)


@router.get("/api/dossiers/{dossier_id}/conversations")
async def dossier_conversations(
    dossier: DossierRead,
    state: State,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ConversationList:
    """The caller's own conversations in the dossier (admins: everyone's)."""
    items = await list_conversations(
        state.db,
        limit=limit,
        dossier_id=dossier.id,
        owner_id=conversation_owner_filter(principal),
    )
    return ConversationList(conversations=items)
