"""A dossier's documents: upload (202, ingested in the background), list, one, delete,
a page's text for the viewer, the original file, and the ingestion progress as SSE."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from legal_assistant.accounts.policy import DossierEdit, DossierRead
from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.api.routes.dossiers import ingestion
from legal_assistant.documents.files import receive_files
from legal_assistant.documents.jobs import document_event
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.store import documents as store
from legal_assistant.store.documents import DocumentPublic
from legal_assistant.store.dossiers import DossierPublic

router = APIRouter(dependencies=[ApiKey])

_MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "rtf": "application/rtf",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/plain; charset=utf-8",  # never rendered by the browser from our origin
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        }
                    },
                }
            }
        },
    }
}
_EVENTS_RESPONSE: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "`document` events (progress of each document), `dossier` "
            "{deleted} when the dossier is deleted.",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"enum": ["document", "dossier"]},
                            "data": {"type": "string", "contentMediaType": "application/json"},
                        },
                    }
                }
            },
        }
    }
}


class DocumentList(BaseModel):
    documents: list[DocumentPublic]


class PassageSpan(BaseModel):
    passage_id: str
    char_start: int
    char_end: int
    label: str | None = None


class PageOut(BaseModel):
    document_id: str
    page: int
    pages: int
    text: str
    source: str
    note: str | None = None
    passages: list[PassageSpan]


def document_not_found(document_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"document {document_id[:64]!r}",
        message_fr="❌ Document introuvable.",
        message_en="❌ Document not found.",
    )


async def dossier_document(
    state: Any, dossier: DossierPublic, document_id: str, lang: Language
) -> DocumentPublic:
    """A document of a dossier the access policy has already let the caller in (the
    document, judgment and brief routes); 404 when the dossier has no such document."""
    doc = await store.get_document(state.db, dossier.id, document_id, lang)
    if doc is None:
        raise document_not_found(document_id)
    return doc


@router.post(
    "/api/dossiers/{dossier_id}/documents",
    status_code=202,
    openapi_extra=_UPLOAD_BODY,
)
async def upload_documents(dossier: DossierEdit, request: Request, state: State) -> DocumentList:
    """Multipart, field `file` (several allowed). Answers at once with the documents
    `queued` (or an existing one with the same content, `duplicate: true`); extraction and
    indexing follow in the background (`GET .../events`). All or nothing: one refused
    file (415 type, 400 empty, 413 larger than MAX_UPLOAD_MB) refuses the request."""
    dossier_id = dossier.id
    service = ingestion(state)
    limit = state.settings.max_upload_mb * 2**20
    # Refused files raise here as soon as they are refused (415 at the part's headers,
    # 413 when its byte count crosses the limit): the rest of the body is never stored.
    # (The server then discards what the client still sends, so the client — which
    # reads the answer only after sending — does get the 413 rather than a reset.)
    received = await receive_files(
        request.headers.get("content-type", ""),
        request.stream(),
        lambda: service.files.incoming(dossier_id, limit),
        max_files=state.settings.max_upload_files,
    )
    lang = request_language(request)
    added = await service.add_files(dossier_id, received)
    return DocumentList(documents=[_localised(d, lang) for d in added])


def _localised(doc: DocumentPublic, lang: Language) -> DocumentPublic:
    if doc.error is None:
        return doc
    message = doc.error.message_fr if lang == "fr" else doc.error.message_en
    return doc.model_copy(update={"error": doc.error.model_copy(update={"message": message})})


@router.get("/api/dossiers/{dossier_id}/documents")
async def list_documents(dossier: DossierRead, state: State, request: Request) -> DocumentList:
    lang = request_language(request)
    return DocumentList(documents=await store.list_documents(state.db, dossier.id, lang))


@router.get("/api/dossiers/{dossier_id}/documents/{document_id}")
async def get_document(
    dossier: DossierRead, document_id: str, state: State, request: Request
) -> DocumentPublic:
    return await dossier_document(state, dossier, document_id, request_language(request))


@router.delete("/api/dossiers/{dossier_id}/documents/{document_id}")
async def delete_document(dossier: DossierEdit, document_id: str, state: State) -> dict[str, bool]:
    """The document's file, passages and vectors: no search returns them afterwards."""
    await dossier_document(state, dossier, document_id, "fr")
    await ingestion(state).delete_document(dossier.id, document_id)
    return {"deleted": True}


@router.get("/api/dossiers/{dossier_id}/documents/{document_id}/pages/{page}")
async def document_page(
    dossier: DossierRead,
    document_id: str,
    page: Annotated[int, Path(ge=1, le=1_000_000)],
    state: State,
    request: Request,
) -> PageOut:
    """The extracted text of one page (1-based; a non-PDF document is one page) and the
    passages cut from it, with their offsets into that text (for highlighting)."""
    doc = await dossier_document(state, dossier, document_id, request_language(request))
    data = ingestion(state).files.read_extracted(dossier.id, doc.id)
    if data is None:
        raise LegalAssistantError(
            "not_found",
            f"document {document_id} has not been extracted (status {doc.status})",
            message_fr="❌ Le texte de ce document n'est pas encore disponible.",
            message_en="❌ This document's text is not available yet.",
        )
    pages = data["pages"]
    found = next((p for p in pages if p["number"] == page), None)
    if found is None:
        raise LegalAssistantError(
            "not_found",
            f"page {page} of {len(pages)}",
            message_fr=f"❌ Page {page} introuvable (le document en compte {len(pages)}).",
            message_en=f"❌ Page {page} not found (the document has {len(pages)}).",
        )
    library = ingestion(state).library
    spans = [
        PassageSpan(
            passage_id=library.passage_id(doc.id, p["ordinal"]),
            char_start=p["char_start"],
            char_end=p["char_end"],
            label=p.get("label"),
        )
        for p in data["passages"]
        if p["page"] == page
    ]
    return PageOut(
        document_id=doc.id,
        page=page,
        pages=len(pages),
        text=found["text"],
        source=found.get("source") or "text",
        note=found.get("note"),
        passages=spans,
    )


@router.get(
    "/api/dossiers/{dossier_id}/documents/{document_id}/file",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def document_file(dossier: DossierRead, document_id: str, state: State) -> FileResponse:
    """The original file as uploaded, as an attachment under its display name."""
    doc = await dossier_document(state, dossier, document_id, "fr")
    path = ingestion(state).files.file_path(dossier.id, doc.id)
    if not path.is_file():
        raise LegalAssistantError("file_missing", doc.id, http_status=404)
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES.get(doc.format, "application/octet-stream"),
        filename=doc.filename,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/api/dossiers/{dossier_id}/events",
    response_class=EventSourceResponse,
    openapi_extra=_EVENTS_RESPONSE,
)
async def dossier_events(
    dossier: DossierRead, state: State, request: Request
) -> EventSourceResponse:
    """Ingestion progress: first the current state of every document, then one
    `document` event per change (`extracting p/N`, `embedding n/M`, `ready`, `failed`
    with its reason, `deleted`); `dossier` {deleted} ends the stream."""
    dossier_id = dossier.id
    service = ingestion(state)
    lang = request_language(request)

    def localise(payload: dict[str, Any]) -> dict[str, Any]:
        error = payload.get("error")
        if isinstance(error, dict) and "message_fr" in error:
            payload = {**payload, "error": {**error, "message": error[f"message_{lang}"]}}
        return payload

    async def gen() -> AsyncIterator[dict[str, Any]]:
        with service.events.subscribe(dossier_id) as sub:  # before the snapshot: no gap
            for doc in await store.list_documents(state.db, dossier_id, lang):
                error = doc.error.model_dump() if doc.error else None
                snapshot = document_event(
                    doc.id,
                    doc.status,
                    stage=doc.stage,
                    done=doc.done,
                    total=doc.total,
                    progress=doc.progress,
                    error=error,
                    filename=doc.filename,
                )
                yield {"event": "document", "data": json.dumps(snapshot, ensure_ascii=False)}
            async for payload in sub:
                if payload.get("deleted") and "dossier_id" in payload:
                    yield {"event": "dossier", "data": json.dumps(payload)}
                    return
                data = json.dumps(localise(payload), ensure_ascii=False)
                yield {"event": "document", "data": data}

    return EventSourceResponse(gen(), ping=15, send_timeout=state.settings.stream_send_timeout_s)
