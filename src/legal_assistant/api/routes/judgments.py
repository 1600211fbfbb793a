"""A document read as a court decision: `GET …/documents/{doc_id}/judgment`.

200 with the structure (judgments/model.py `to_dict`, the API contract in docs/api.md),
`{"is_judgment": false}` for a document that is not a decision, 409
`judgment_not_ready` while the document is being ingested (or has failed), 404 for an
unknown dossier or document. A ready document ingested before judgments were read has
no stored structure: it is read once from its extracted pages and stored.
`judgment_of(state, doc)` is the same answer for other routes (the fiche's).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from legal_assistant.accounts.policy import DossierRead
from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.api.routes.documents import dossier_document
from legal_assistant.api.routes.dossiers import ingestion
from legal_assistant.documents.model import Page
from legal_assistant.errors import LegalAssistantError
from legal_assistant.judgments.model import Judgment
from legal_assistant.judgments.parse import analyse
from legal_assistant.store import judgments as judgment_store
from legal_assistant.store.documents import DocumentPublic

router = APIRouter(dependencies=[ApiKey])


@router.get("/api/dossiers/{dossier_id}/documents/{document_id}/judgment")
async def document_judgment(
    dossier: DossierRead, document_id: str, state: State, request: Request
) -> dict[str, Any]:
    """The decision's header, zones, numbered paragraphs and visa."""
    doc = await dossier_document(state, dossier, document_id, request_language(request))
    return (await judgment_of(state, doc)).to_dict()


async def judgment_of(state: Any, doc: DocumentPublic) -> Judgment:
    """The structure of a document the caller has already found (and may see): stored
    at ingestion, or read once from its extracted pages for a document ingested before
    judgments were read. `judgment_not_ready` (409) until the document is ready."""
    if doc.status == "failed":
        raise LegalAssistantError(
            "judgment_not_ready",
            "document status failed",
            message_fr="❌ L'indexation de ce document a échoué : sa structure n'a pas été lue.",
            message_en="❌ This document failed to be indexed: its structure was not read.",
        )
    if doc.status != "ready":
        raise LegalAssistantError("judgment_not_ready", f"document status {doc.status}")
    judgment = await judgment_store.get_judgment(state.db, doc.dossier_id, doc.id)
    if judgment is not None:
        return judgment
    data = ingestion(state).files.read_extracted(doc.dossier_id, doc.id)
    if data is None:
        raise LegalAssistantError("judgment_not_ready", "no extracted text")
    pages = [Page(number=p["number"], text=p["text"]) for p in data["pages"]]
    judgment = await asyncio.to_thread(analyse, pages, bool(data.get("paginated")))
    await judgment_store.save_judgment(
        state.db, dossier_id=doc.dossier_id, document_id=doc.id, judgment=judgment
    )
    return judgment
