"""A judgment's fiche d'arrêt: build it (SSE progress per section), read it, export it.

Same dependencies as the other document routes (API key now; the dossier access policy
when it comes): a document is reached through its dossier, and 404 says "not there".
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from legal_assistant.accounts.policy import BodyModel, DossierRead
from legal_assistant.accounts.principal import principal_of
from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.api.routes.documents import dossier_document
from legal_assistant.api.routes.dossiers import ingestion
from legal_assistant.api.routes.judgments import judgment_of
from legal_assistant.api.sse import sse
from legal_assistant.chat.turn import Text
from legal_assistant.claims.checker import ClaimChecker
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.judgments.brief import BriefEvent, SectionWriter, build_brief, not_a_judgment
from legal_assistant.judgments.chat_model import ChatModel
from legal_assistant.judgments.decision import Decision, PageText
from legal_assistant.judgments.export import to_docx, to_markdown
from legal_assistant.judgments.fiche import Brief
from legal_assistant.judgments.generated import ModelWriter, claim_support
from legal_assistant.store.briefs import BriefStore
from legal_assistant.store.documents import DocumentPublic
from legal_assistant.store.dossiers import DossierPublic

log = logging.getLogger("legal_assistant")
router = APIRouter(dependencies=[ApiKey])

_BRIEF_EVENTS: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "`progress` {section, done, total} after each section, `status` "
            "while a model's engine starts, then `brief` (the fiche as saved) or `error` "
            "{code, message, detail, kept_previous}.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    }
}


class BriefRequest(BaseModel):
    model_id: Text | None = Field(default=None, max_length=500)
    language: Language = "fr"


def _no_brief(document_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"no fiche for document {document_id[:64]!r}",
        message_fr="❌ Aucune fiche d'arrêt pour ce document.",
        message_en="❌ No case brief for this document.",
    )


async def load_decision(state: Any, doc: DocumentPublic) -> Decision:
    """The document's structure (judgments.judgment_of: stored at ingestion, else read
    once) and its pages; 409 `judgment_not_ready` while it is not ready, 422
    `not_a_judgment`."""
    judgment = await judgment_of(state, doc)
    if not judgment.is_judgment:
        raise not_a_judgment(doc.id)
    data = ingestion(state).files.read_extracted(doc.dossier_id, doc.id)
    if data is None:
        raise LegalAssistantError("judgment_not_ready", "no extracted text")
    return Decision(judgment, [PageText(p["number"], p["text"]) for p in data["pages"]])


def briefs(state: Any) -> BriefStore:
    return BriefStore(ingestion(state).files)


@router.post(
    "/api/dossiers/{dossier_id}/documents/{document_id}/brief",
    response_class=EventSourceResponse,
    openapi_extra=_BRIEF_EVENTS,
    dependencies=[BodyModel],  # a key's model allowlist
)
async def make_brief(
    dossier: DossierRead, document_id: str, body: BriefRequest, state: State, request: Request
) -> EventSourceResponse:
    """Build the fiche (extractive without `model_id`; written by that chat model
    otherwise) and save it — replacing the previous one only once it is complete."""
    request.state.language = body.language
    lang = body.language
    dossier_id = dossier.id
    doc = await dossier_document(state, dossier, document_id, lang)
    decision = await load_decision(state, doc)
    model: ChatModel | None = None
    writer: SectionWriter | None = None
    if body.model_id is not None:
        model = ChatModel(
            state.settings,
            state.supervisor,
            body.model_id,
            admission=state.admission,
            user_id=principal_of(request).user_id,
        )
        checker = ClaimChecker(ingestion(state).library.embedder.queries)
        writer = ModelWriter(model, claim_support(checker))
    saved = briefs(state)

    async def events() -> AsyncIterator[BriefEvent]:
        try:
            async for item in build_brief(
                decision, doc.id, lang, writer=writer, filename=doc.filename
            ):
                if isinstance(item, Brief):
                    await saved.save(dossier_id, item)
                    yield BriefEvent("brief", item.to_dict())
                else:
                    yield item
        except Exception as exc:
            err = exc if isinstance(exc, LegalAssistantError) else None
            if err is None:
                log.exception("fiche d'arrêt of %s failed", doc.id)
                err = LegalAssistantError("internal_error", f"{type(exc).__name__}: {exc}"[:300])
            data = err.to_dict(lang)
            data["kept_previous"] = await saved.get(dossier_id, doc.id) is not None
            yield BriefEvent("error", data)
        finally:
            if model is not None:
                with contextlib.suppress(Exception):
                    await model.aclose()

    return sse(events(), send_timeout=state.settings.stream_send_timeout_s)


async def _saved(state: Any, dossier: DossierPublic, document_id: str, request: Request) -> Brief:
    doc = await dossier_document(state, dossier, document_id, request_language(request))
    brief = await briefs(state).get(dossier.id, doc.id)
    if brief is None:
        raise _no_brief(document_id)
    return brief


def _download_name(brief: Brief, ext: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", (brief.filename or "decision").rsplit(".", 1)[0])[:80]
    return f"fiche-{stem}.{ext}"


@router.get("/api/dossiers/{dossier_id}/documents/{document_id}/brief")
async def get_brief(
    dossier: DossierRead, document_id: str, state: State, request: Request
) -> dict[str, Any]:
    return (await _saved(state, dossier, document_id, request)).to_dict()


@router.get(
    "/api/dossiers/{dossier_id}/documents/{document_id}/brief.md",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}}},
)
async def brief_markdown(
    dossier: DossierRead, document_id: str, state: State, request: Request
) -> Response:
    brief = await _saved(state, dossier, document_id, request)
    return Response(
        to_markdown(brief),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_download_name(brief, "md")}"'},
    )


@router.get(
    "/api/dossiers/{dossier_id}/documents/{document_id}/brief.docx",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {}
            }
        }
    },
)
async def brief_docx(
    dossier: DossierRead, document_id: str, state: State, request: Request
) -> Response:
    brief = await _saved(state, dossier, document_id, request)
    return Response(
        to_docx(brief),
        media_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        headers={"Content-Disposition": f'attachment; filename="{_download_name(brief, "docx")}"'},
    )
