"""Grounded answers: a chat turn in a dossier answers from the dossier's passages.

For each question: retrieve the dossier's best passages (hybrid search), keep those over
the retrieval's calibrated relevance threshold (at most `grounding_passages`), number
them [1]..[k] in the prompt with the instruction to answer only from them and cite them,
and send them to the client as `event: sources` before the first token.

When nothing relevant is found, the model is NOT called: the answer is a fixed sentence
saying so (FR/EN). A small local model told "there is nothing" still tends to answer from
its own memory — exactly the invented law this feature exists to avoid — and the fixed
answer costs nothing.

After the answer, its claims are checked (legal_assistant.claims): every statement against
every passage it cites. `done.claims` carries the verdicts, and `done.citations` (the
"verified" numbers) lists only the numbers that support at least one statement — a "[7]"
when five passages were sent, or a "[2]" whose passage does not say what the sentence says,
is not verified.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

from legal_assistant.chat.prompts import grounded_question, grounded_system_prompt, no_passage
from legal_assistant.claims import Claim, ClaimChecker
from legal_assistant.config import Settings
from legal_assistant.documents.library import DossierLibrary, Found
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.providers import StreamItem, TokenDelta
from legal_assistant.store import Database
from legal_assistant.store.dossiers import get_dossier

log = logging.getLogger("legal_assistant")

# "[1]", "[1, 3]", "[2;4]", "[1-3]" / "[1–3]" (ranges), with optional spaces.
_CITATION = re.compile(r"\[\s*(\d{1,3}(?:\s*(?:[,;]|[-–])\s*\d{1,3})*)\s*\]")
_MAX_RANGE = 20


def verify_citations(answer: str, sent: int) -> list[int]:
    """The passage numbers `answer` cites that were among the `sent` ones (1..sent), in
    order of first appearance, each once."""
    cited: list[int] = []

    def keep(n: int) -> None:
        if 1 <= n <= sent and n not in cited:
            cited.append(n)

    for match in _CITATION.finditer(answer):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            bounds = re.split(r"\s*[-–]\s*", part)
            if len(bounds) == 2:
                low, high = int(bounds[0]), int(bounds[1])
                if low <= high and high - low <= _MAX_RANGE:
                    for n in range(low, high + 1):
                        keep(n)
            elif len(bounds) == 1:
                keep(int(bounds[0]))
    return cited


def _source(n: int, found: Found) -> dict[str, Any]:
    data = found.to_dict()
    return {
        "n": n,
        **{
            key: data[key]
            for key in (
                "passage_id",
                "document_id",
                "filename",
                "page",
                "paragraph",
                "label",
                "text",
                "char_start",
                "char_end",
            )
        },
    }


class FixedAnswer:
    """A provider that 'streams' a fixed sentence (nothing relevant in the dossier)."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def stream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sampling: Mapping[str, float] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        yield TokenDelta(self.text)


@dataclass
class Grounding:
    """The passages one turn was given, and what to do with them."""

    dossier_id: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    checker: ClaimChecker = field(default_factory=ClaimChecker)

    @property
    def relevant(self) -> bool:
        return bool(self.sources)

    def event(self) -> dict[str, Any]:
        return {"dossier_id": self.dossier_id, "sources": self.sources}

    def messages(
        self, language: Language, history: list[dict[str, str]], question: str, max_chars: int
    ) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": grounded_system_prompt(language)},
            *history,
            {
                "role": "user",
                "content": grounded_question(language, question, self.sources, max_chars),
            },
        ]

    def fixed_answer(self, language: Language) -> FixedAnswer:
        return FixedAnswer(no_passage(language))

    def citations(self, answer: str) -> list[int]:
        """Cited numbers that were sent (used only when the claims could not be checked)."""
        return verify_citations(answer, len(self.sources))

    async def check(self, answer: str) -> list[Claim]:
        """The answer's statements, each checked against the passages it cites."""
        passages = {s["n"]: passage_text(s) for s in self.sources}
        try:
            return await self.checker.check(answer, passages)
        except LegalAssistantError as exc:
            # The embedding engine failed after the answer was written: the answer still
            # stands; its claims are judged on substance alone (less accurate, logged).
            log.warning("claim check without embeddings: %s", exc.detail)
            return await ClaimChecker(None).check(answer, passages)


def passage_text(source: dict[str, Any]) -> str:
    """What a cited passage is checked against: its label ("Article 1382", "§ 12": the
    article a statement names is often only there) and its whole text."""
    label, text = source.get("label"), str(source["text"])
    return f"{label}\n{text}" if label else text


def supporting(claims: list[Claim]) -> list[int]:
    """The numbers that support at least one statement, in order of first appearance."""
    out: list[int] = []
    for claim in claims:
        for c in claim.citations:
            if c.verdict == "supported" and c.n not in out:
                out.append(c.n)
    return out


class Grounder:
    def __init__(self, settings: Settings, db: Database, library: DossierLibrary) -> None:
        self.settings = settings
        self.db = db
        self.library = library
        # Statements and passages embedded as e5 queries, in one engine request a check.
        self.checker = ClaimChecker(library.embedder.queries)

    async def check(self, dossier_id: str) -> None:
        """Refuse (404) a turn in a dossier that does not exist, before anything is saved."""
        if await get_dossier(self.db, dossier_id) is None:
            raise LegalAssistantError(
                "not_found",
                f"dossier {dossier_id[:64]!r}",
                message_fr="❌ Dossier introuvable.",
                message_en="❌ Dossier not found.",
            )

    async def ground(self, dossier_id: str, question: str) -> Grounding:
        k = self.settings.grounding_passages
        found, _ = await self.library.search(dossier_id, question, k)
        relevant = [f for f in found if f.hit.relevant][:k]
        sources = [_source(n, f) for n, f in enumerate(relevant, start=1)]
        return Grounding(dossier_id, sources, self.checker)
