"""`POST /api/dossiers/{id}/verify`: check any text's citations against the dossier's passages.

The same claim check grounded chat runs on every answer (legal_assistant.claims), offered to
clients: a user can check text written elsewhere (a draft, another tool's answer) against
the dossier. The body names which passage each citation number stands for:
`{"answer": "... [1] ... [2].", "sources": [{"n": 1, "passage_id": "..."}, ...]}` →
`{"claims": [...]}` (the shape of `done.claims`, docs/claims.md).

Every passage id must be one of this dossier's indexed passages: an unknown id, or the id of
another dossier's passage, is refused (404) rather than checked against nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from legal_assistant.accounts.policy import DossierRead
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.api.routes.dossiers import ingestion
from legal_assistant.chat.grounding import passage_text
from legal_assistant.chat.turn import Text
from legal_assistant.claims import ClaimChecker
from legal_assistant.errors import LegalAssistantError

router = APIRouter(dependencies=[ApiKey])

# Bounds that keep one request to seconds on two cores: the answer's statements and the
# cited passages go to the embedding engine in one request (~20 statements/s there).
MAX_ANSWER_CHARS = 100_000
MAX_SOURCES = 50


class VerifySource(BaseModel):
    n: int = Field(ge=0, le=9999)
    passage_id: str = Field(min_length=1, max_length=200)


class VerifyIn(BaseModel):
    answer: Annotated[Text, Field(max_length=MAX_ANSWER_CHARS)]
    sources: list[VerifySource] = Field(default_factory=list, max_length=MAX_SOURCES)


class VerifyOut(BaseModel):
    claims: list[dict[str, Any]]


def _bad(detail: str, fr: str, en: str) -> LegalAssistantError:
    return LegalAssistantError("bad_request", detail, message_fr=fr, message_en=en)


@router.post("/api/dossiers/{dossier_id}/verify")
async def verify(dossier: DossierRead, body: VerifyIn, state: State) -> VerifyOut:
    """Each statement of `answer` with its verdict and, for each number it cites, whether
    the passage given for that number backs it."""
    dossier_id = dossier.id  # readers may verify (the access policy let the caller in)
    if not body.answer.strip():
        raise _bad(
            "empty answer", "❌ Le texte à vérifier est vide.", "❌ The text to check is empty."
        )
    numbers = [s.n for s in body.sources]
    if len(set(numbers)) != len(numbers):
        raise _bad(
            "a source number is given twice",
            "❌ Un même numéro de source est donné deux fois.",
            "❌ The same source number is given twice.",
        )
    library = ingestion(state).library
    found = await library.passages(dossier_id, [s.passage_id for s in body.sources])
    unknown = [s.passage_id for s in body.sources if s.passage_id not in found]
    if unknown:
        raise LegalAssistantError(
            "not_found",
            f"passages not in dossier {dossier_id[:64]!r}: {', '.join(unknown[:5])[:300]}",
            message_fr="❌ Passage introuvable dans ce dossier.",
            message_en="❌ Passage not found in this dossier.",
        )
    passages = {
        s.n: passage_text({"label": found[s.passage_id].label, "text": found[s.passage_id].text})
        for s in body.sources
    }
    claims = await ClaimChecker(library.embedder.queries).check(body.answer, passages)
    return VerifyOut(claims=[c.to_dict() for c in claims])
