"""Building a fiche d'arrêt, section by section, with progress.

The extractive sections are always built first (milliseconds); when a model writes the
fiche, each section is then handed to it with its extractive content as grounding
(`judgments/generated.py`). Events are yielded as they happen — `progress` after each
section, `status` while a model's engine starts — and the finished `Brief` last. Saving
is the caller's job, so a fiche that fails midway never replaces the previous one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.judgments.decision import Decision
from legal_assistant.judgments.extractive import ExtractiveFiche
from legal_assistant.judgments.fiche import SECTION_KEYS, Brief, Section, SectionKey


@dataclass(frozen=True, slots=True)
class BriefEvent:
    event: Literal["progress", "status", "brief", "error"]
    data: dict[str, Any]


class SectionWriter(Protocol):
    """A model that rewrites one section from the decision and its extractive content."""

    model_id: str

    def write(
        self, key: SectionKey, extracted: Section, decision: Decision, language: Language
    ) -> AsyncIterator[BriefEvent | Section]: ...


def not_a_judgment(document_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_a_judgment",
        f"document {document_id[:64]!r} is not a court decision",
    )


async def build_brief(
    decision: Decision,
    document_id: str,
    language: Language = "fr",
    *,
    writer: SectionWriter | None = None,
    filename: str | None = None,
) -> AsyncIterator[BriefEvent | Brief]:
    """Yield `progress` {"section", "done", "total"} after each section, `status` events
    from the writer's engine, then the `Brief`. Raises LegalAssistantError (a model's
    failure included: the caller keeps the previous fiche)."""
    if not decision.judgment.is_judgment:
        raise not_a_judgment(document_id)
    extractive = ExtractiveFiche(decision, language)
    sections: list[Section] = []
    total = len(SECTION_KEYS)
    for done, key in enumerate(SECTION_KEYS, start=1):
        section = await extractive.section(key)
        if writer is not None:
            async for item in writer.write(key, section, decision, language):
                if isinstance(item, Section):
                    section = item
                else:
                    yield item
        sections.append(section)
        yield BriefEvent("progress", {"section": key, "done": done, "total": total})
    yield Brief(
        document_id=document_id,
        language=language,
        model=writer.model_id if writer is not None else None,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        judgment=decision.judgment.to_dict(),
        sections=tuple(sections),
        filename=filename,
    )
