"""What a court decision is made of, as the parser reads it and the API returns it.

The JSON shape (`to_dict`) is the contract of `GET .../documents/{doc_id}/judgment`
(docs/api.md); keep its keys. A field the parser cannot read is None (never guessed).
Offsets follow passages' rule: `page_text[char_start:char_end]` is the zone/paragraph,
`page` being the PDF page (1 for non-paginated formats).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# The Cour de cassation's own zone names (Judilibre).
Zone = Literal["introduction", "expose", "moyens", "motivations", "dispositif", "annexes"]
ZONES: tuple[Zone, ...] = (
    "introduction",
    "expose",
    "moyens",
    "motivations",
    "dispositif",
    "annexes",
)
PartyRole = Literal["demandeur", "defendeur", "autre"]


@dataclass(frozen=True, slots=True)
class Attacked:
    """The decision under review ("contre l'arrêt rendu le … par la cour d'appel de …")."""

    court: str | None
    date: str | None  # ISO


@dataclass(frozen=True, slots=True)
class Party:
    name: str  # as written (pseudonymised names stay as they are)
    role: PartyRole


@dataclass(frozen=True, slots=True)
class Visa:
    """A text the Court applies: "Vu l'article 1240 du code civil"."""

    article: str  # normalised number: "1240", "L. 1234-9"
    code: str | None  # normalised code name: "code civil", "code du travail"
    text: str  # the reference as printed


@dataclass(frozen=True, slots=True)
class ZoneSpan:
    zone: Zone
    title: str | None  # the heading as printed ("Réponse de la Cour"), None if none
    page: int
    char_start: int
    char_end: int
    paragraphs: tuple[int, ...] = ()  # numbers of the paragraphs inside it


@dataclass(frozen=True, slots=True)
class Paragraph:
    n: int  # "7." -> 7
    zone: Zone
    page: int
    char_start: int
    char_end: int


@dataclass(frozen=True, slots=True)
class Judgment:
    is_judgment: bool
    court: str | None = None
    formation: str | None = None
    date: str | None = None  # ISO
    numbers: tuple[str, ...] = ()
    solution: str | None = None
    president: str | None = None
    publication: str | None = None
    ecli: str | None = None
    attacked: Attacked | None = None
    parties: tuple[Party, ...] = ()
    visa: tuple[Visa, ...] = ()
    zones: tuple[ZoneSpan, ...] = ()
    paragraphs: tuple[Paragraph, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        if not self.is_judgment:
            return {"is_judgment": False}
        data = asdict(self)
        data["numbers"] = list(self.numbers)
        for zone in data["zones"]:
            zone["paragraphs"] = list(zone["paragraphs"])
        for key in ("parties", "visa", "zones", "paragraphs"):
            data[key] = list(data[key])
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Judgment:
        """The inverse of `to_dict` (a stored or received structure)."""
        if not data.get("is_judgment"):
            return Judgment.not_a_judgment()
        attacked = data.get("attacked")
        return Judgment(
            is_judgment=True,
            court=data.get("court"),
            formation=data.get("formation"),
            date=data.get("date"),
            numbers=tuple(data.get("numbers") or ()),
            solution=data.get("solution"),
            president=data.get("president"),
            publication=data.get("publication"),
            ecli=data.get("ecli"),
            attacked=Attacked(attacked.get("court"), attacked.get("date")) if attacked else None,
            parties=tuple(Party(p["name"], p["role"]) for p in data.get("parties") or ()),
            visa=tuple(
                Visa(v["article"], v.get("code"), v["text"]) for v in data.get("visa") or ()
            ),
            zones=tuple(
                ZoneSpan(
                    z["zone"],
                    z.get("title"),
                    z["page"],
                    z["char_start"],
                    z["char_end"],
                    tuple(z.get("paragraphs") or ()),
                )
                for z in data.get("zones") or ()
            ),
            paragraphs=tuple(
                Paragraph(p["n"], p["zone"], p["page"], p["char_start"], p["char_end"])
                for p in data.get("paragraphs") or ()
            ),
        )

    @staticmethod
    def not_a_judgment() -> Judgment:
        return Judgment(is_judgment=False)
