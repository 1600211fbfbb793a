"""Reading a decision's text for quotation: its quotable units (numbered paragraphs, or
the blocks of an unnumbered zone), a paragraph without its number, a verbatim condensed
prefix (first sentence or clause, nested « » balanced), and dates written out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from legal_assistant.errors import Language
from legal_assistant.judgments.decision import Decision
from legal_assistant.judgments.model import Zone

QUOTE_CHARS = 320  # a condensed quotation stays under this many characters
_ABBREVIATIONS = {"M", "MM", "Mme", "Mmes", "Me", "art", "al", "n°", "p", "pp", "c", "cf", "L", "R"}
_SENTENCE_END = re.compile(r"[.;!?](?=\s+[«A-ZÀ-ÝÉ\[])")
_NUMBER_PREFIX = re.compile(r"^\s*\d{1,4}\s*[.)]\s*")
_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


@dataclass(frozen=True, slots=True)
class Unit:
    """A piece of the decision a statement can quote: a numbered paragraph, or (old-style
    decisions, unnumbered text) a block of a zone."""

    n: int | None
    page: int
    char_start: int
    char_end: int
    text: str


def units(decision: Decision, zone: Zone) -> list[Unit]:
    numbered = decision.paragraphs_in(zone)
    if numbered:
        return [
            Unit(p.n, p.page, p.char_start, p.char_end, decision.paragraph_text(p.n) or "")
            for p in numbered
        ]
    found: list[Unit] = []
    for span in decision.zones(zone):
        text = decision.span_text(span)
        for m in re.finditer(r"[^\n]+(?:\n(?!\s*\n)[^\n]+)*", text):
            block = m.group().strip()
            if len(block) >= 40:
                found.append(
                    Unit(
                        None,
                        span.page,
                        span.char_start + m.start(),
                        span.char_start + m.end(),
                        block,
                    )
                )
    return found


def paragraph_body(text: str) -> str:
    """A paragraph's text without its "7." number."""
    return _NUMBER_PREFIX.sub("", text, count=1).strip()


def _first_sentence(text: str) -> str:
    for m in _SENTENCE_END.finditer(text):
        before = text[: m.start()].rsplit(None, 1)
        last = before[-1] if before else ""
        if last.strip("([") in _ABBREVIATIONS or (len(last) == 1 and last.isupper()):
            continue
        return text[: m.start() + (1 if text[m.start()] == "." else 0)]
    return text


def condense(text: str, limit: int = QUOTE_CHARS) -> tuple[str, bool]:
    """A verbatim prefix of `text`: its first sentence, cut at a clause boundary when
    longer than `limit`; and whether something was left out."""
    text = text.strip()
    first = _first_sentence(text).strip()
    if len(first) <= limit:
        return first, len(first) < len(text)
    window = first[:limit]
    cut = max(window.rfind(" ; "), window.rfind(", "))
    if cut < limit // 3:
        cut = window.rfind(" ")
    # The quotation ends inside a possible nested « » of the decision: keep it balanced.
    quote = first[:cut].rstrip(" ,;")
    while quote.count("«") > quote.count("»"):
        quote = quote[: quote.rfind("«")].rstrip(" ,;")
    return quote, True


def long_date(iso: str | None, lang: Language) -> str | None:
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", iso or "")
    if not m:
        return None
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= month <= 12:
        return None
    name = _MONTHS[lang][month - 1]
    if lang == "fr":
        return f"{'1er' if day == 1 else day} {name} {year}"
    return f"{day} {name} {year}"
