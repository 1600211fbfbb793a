"""The fiche d'arrêt (case brief): its sections, its statements, and the saved record.

The JSON shape (`Brief.to_dict`) is the contract of `GET .../documents/{doc_id}/brief`
(docs/api.md): keep its keys. Each statement names the numbered paragraphs it rests on
(`paragraphs`) and, for text the Court did not number (the visa, the ruling, the header),
the exact spans it quotes (`anchors`), so every citation opens the viewer at its source.
`verified` is the result of the checks in `judgments/checks.py`, stored as decided then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from legal_assistant.errors import Language

SectionKey = Literal[
    "presentation", "faits", "procedure", "moyens", "probleme", "solution", "portee"
]
# The order a French law faculty teaches; clients rely on it.
SECTION_KEYS: tuple[SectionKey, ...] = (
    "presentation",
    "faits",
    "procedure",
    "moyens",
    "probleme",
    "solution",
    "portee",
)
SectionSource = Literal["extracted", "generated"]

TITLES: dict[Language, dict[SectionKey, str]] = {
    "fr": {
        "presentation": "Présentation",
        "faits": "Faits",
        "procedure": "Procédure",
        "moyens": "Moyens",
        "probleme": "Problème de droit",
        "solution": "Solution",
        "portee": "Portée",
    },
    "en": {
        "presentation": "Presentation",
        "faits": "Facts",
        "procedure": "Procedural history",
        "moyens": "Grounds of appeal",
        "probleme": "Legal issue",
        "solution": "Holding",
        "portee": "Significance",
    },
}


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where quoted text lies in the decision: `page_text[char_start:char_end]`."""

    page: int
    char_start: int
    char_end: int
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    paragraphs: tuple[int, ...] = ()
    verified: bool = False
    anchors: tuple[Anchor, ...] = ()
    # Why a statement is not verified ("paragraph_missing", "quote_not_verbatim",
    # "unsupported", "degenerate", "uncited"); None when verified.
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "paragraphs": list(self.paragraphs),
            "verified": self.verified,
            "anchors": [
                {"page": a.page, "char_start": a.char_start, "char_end": a.char_end, "zone": a.zone}
                for a in self.anchors
            ],
            "reason": self.reason,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Statement:
        return Statement(
            text=str(data["text"]),
            paragraphs=tuple(int(n) for n in data.get("paragraphs", [])),
            verified=bool(data.get("verified", False)),
            anchors=tuple(
                Anchor(int(a["page"]), int(a["char_start"]), int(a["char_end"]), a.get("zone"))
                for a in data.get("anchors", [])
            ),
            reason=data.get("reason"),
        )


@dataclass(frozen=True, slots=True)
class Section:
    key: SectionKey
    title: str
    source: SectionSource
    statements: tuple[Statement, ...] = ()
    # Said plainly instead of statements when a section cannot be written (no model).
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "source": self.source,
            "statements": [s.to_dict() for s in self.statements],
            "note": self.note,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Section:
        key = data["key"]
        if key not in SECTION_KEYS:
            raise ValueError(f"unknown section {key!r}")
        source: SectionSource = "generated" if data.get("source") == "generated" else "extracted"
        return Section(
            key=key,
            title=str(data.get("title", "")),
            source=source,
            statements=tuple(Statement.from_dict(s) for s in data.get("statements", [])),
            note=data.get("note"),
        )


@dataclass(frozen=True, slots=True)
class Brief:
    document_id: str
    language: Language
    model: str | None  # None: extractive
    created_at: str  # ISO 8601, UTC
    judgment: dict[str, Any]  # Judgment.to_dict() as it was when the fiche was built
    sections: tuple[Section, ...] = field(default=())
    filename: str | None = None

    def section(self, key: SectionKey) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "language": self.language,
            "model": self.model,
            "created_at": self.created_at,
            "filename": self.filename,
            "judgment": self.judgment,
            "sections": [s.to_dict() for s in self.sections],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Brief:
        language: Language = "en" if data.get("language") == "en" else "fr"
        return Brief(
            document_id=str(data["document_id"]),
            language=language,
            model=data.get("model"),
            created_at=str(data["created_at"]),
            judgment=dict(data.get("judgment") or {}),
            sections=tuple(Section.from_dict(s) for s in data.get("sections", [])),
            filename=data.get("filename"),
        )
