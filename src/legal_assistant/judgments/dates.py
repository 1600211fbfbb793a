"""French dates as decisions print them: "5 décembre 2024", "1er mars 2023",
"10 DÉCEMBRE 2024", "5 déc. 2024" — to ISO ("2024-12-05"), or None when unreadable."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_MONTHS = {
    "janvier": 1, "janv": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4,
    "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9,
    "sept": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "decembre": 12, "dec": 12,
}  # fmt: skip
# A day, a month name (any case, accents or not) and a four-digit year.
DATE = re.compile(
    r"\b(?P<day>[0-3]?\d)\s*(?:er|ER)?\s+(?P<month>[A-Za-zÀ-ÿ]{3,9})\.?\s+(?P<year>(?:1[89]|20)\d\d)\b"
)


def fold(text: str) -> str:
    """Lower case without accents: "DÉCEMBRE" -> "decembre"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def iso_date(match: re.Match[str]) -> str | None:
    """The ISO form of a DATE match, or None if it is not a real date."""
    month = _MONTHS.get(fold(match.group("month")))
    if month is None:
        return None
    try:
        return date(int(match.group("year")), month, int(match.group("day"))).isoformat()
    except ValueError:
        return None


def first_date(text: str) -> str | None:
    for match in DATE.finditer(text):
        found = iso_date(match)
        if found:
            return found
    return None
