"""Dossiers: create, list, rename, delete; their search and their conversations.
Documents (upload, progress, pages, files) are in `documents.py` beside this module."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

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


def dossier_not_found(dossier_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"dossier {dossier_id[:64]!r}",
        message_fr="❌ Dossier introuvable.",
        message_en="❌ Dossier not found.",
    )


def ingestion(state: Any) -> IngestionService:
    service: IngestionService | None = state.ingestion
    if service is None:  # pragma: no cover - the lifespan always sets it
        raise LegalAssistantError("shutting_down")
    return service


async def existing_dossier(state: Any, dossier_id: str) -> DossierPublic:
    dossier = await store.get_dossier(state.db, dossier_id)
    if dossier is None:
        raise dossier_not_found(dossier_id)
    return dossier


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
async def create_dossier(body: DossierIn, state: State) -> DossierPublic:
    embedder = ingestion(state).library.embedder
    return await store.create_dossier(
        state.db,
        name=_clean_name(body.name),
        embedding_model=embedder.model_id,
        dimension=embedder.dimension,
    )


@router.get("/api/dossiers")
async def list_dossiers(state: State) -> DossierList:
    return DossierList(dossiers=await store.list_dossiers(state.db))


@router.get("/api/dossiers/{dossier_id}")
async def get_dossier(dossier_id: str, state: State) -> DossierPublic:
    return await existing_dossier(state, dossier_id)


@router.patch("/api/dossiers/{dossier_id}")
async def rename_dossier(dossier_id: str, body: DossierIn, state: State) -> DossierPublic:
    renamed = await store.rename_dossier(state.db, dossier_id, _clean_name(body.name))
    if renamed is None:
        raise dossier_not_found(dossier_id)
    return renamed


@router.delete("/api/dossiers/{dossier_id}")
async def delete_dossier(dossier_id: str, state: State) -> dict[str, bool]:
    """The dossier, its documents (files, passages, vectors) and its conversations."""
    await existing_dossier(state, dossier_id)
    if not await ingestion(state).delete_dossier(dossier_id):
        raise dossier_not_found(dossier_id)
    return {"deleted": True}


@router.get("/api/dossiers/{dossier_id}/search")
async def search_dossier(
    dossier_id: str,
    state: State,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResponse:
    """Hybrid search (keywords + embeddings) over the dossier's indexed documents."""
    await existing_dossier(state, dossier_id)
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
    dossier_id: str, state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> ConversationList:
    await existing_dossier(state, dossier_id)
    items = await list_conversations(state.db, limit=limit, dossier_id=dossier_id)
    return ConversationList(conversations=items)
