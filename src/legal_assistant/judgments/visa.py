"""The visa: the texts the Court applies, "Vu l'article 1240 du code civil :", as
normalised references (article number + code).

"Vu les articles L. 1110-4 du code de la santé publique, L. 315-1, V, L. 461-1 et
R. 441-14 du code de la sécurité sociale" gives each article with the code that follows
it. Numbers are normalised ("L.1234-9" -> "L. 1234-9"); the code keeps its printed name
in lower case ("code civil", "loi n° 65-557 du 10 juillet 1965"). A visa that cites only
a principle ("Vu le principe de la réparation intégrale") has no article: it is not
listed (the fiche reads the visa line itself).
"""

from __future__ import annotations

import re

from legal_assistant.judgments.dates import DATE
from legal_assistant.judgments.model import Visa

_VISA_LINE = re.compile(
    r"^[ \t]*(Vu\s+(?:l['’]|les?\s|la\s)[^\n]{3,1200}?)\s*(?::|;|\.)?[ \t]*$", re.M
)
_SOURCE_WORDS = (
    r"code|Code|loi|Loi|décret|ordonnance|règlement|Règlement|directive|Directive|convention|Convention"
    r"|traité|Traité|arrêté|Arrangement|arrangement|Constitution|protocole|Protocole|charte|Charte|accord|Accord"
    r"|annexe|nomenclature|tableau|Déclaration|déclaration|statut"
)
# "du code du travail", "de la loi n° 65-557 du 10 juillet 1965", "de l'Arrangement …".
_SOURCE = re.compile(
    rf"(?:\bdu\s+|\bde\s+la\s+|\bde\s+l['’]\s*|\bdes\s+|\bde\s+)(?P<code>(?:{_SOURCE_WORDS})\b.*?)"
    r"(?=\s*(?:,|;|:|$|\bet\s+(?:l['’]article|les?\s+(?:articles?|principes?)|la\s+(?:loi|règle|directive|[Cc]onvention)|[LRDA]\.?\s?\d|\d)|\bensemble\b|\bdans\s+(?:sa|leur)\b|\btel(?:le)?s?\b|\bpris\b|\brendu))",
)
_ARTICLE = re.compile(
    r"(?<![\w°/.-])(?:(?P<prefix>L\.?\s?O\.?|LO|[LRDA])\s?\.?\s*)?"
    r"(?P<num>\d+(?:\s?[-‑]\s?\d+)*(?:-[A-Z])?|(?<=article\s)(?:1er|premier))"
    r"(?P<suffix>\s+(?:bis|ter|quater|quinquies|sexies|septies|octies|nonies|decies)\b)?(?![\w°])"
)
_NOT_ARTICLE_BEFORE = re.compile(r"(?:alin[ée]as?|§|n°|paragraphes?|points?|al\.)\s*$", re.I)
_MASK = re.compile(rf"{DATE.pattern}|n°\s*\d+(?:[-/]\d+)*")
_MAX_VISA = 60


def visa_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each "Vu …" line in text."""
    return [(m.start(1), m.end(1)) for m in _VISA_LINE.finditer(text)]


def parse_visa(line: str) -> list[Visa]:
    """The references of one visa line ("Vu les articles … du code …")."""
    body = re.sub(r"\s+", " ", line).strip()
    body = re.sub(r"^Vu\s+", "", body)
    text = "Vu " + body
    original = body
    # Dates and numbered texts ("n° 2017-1386") are not articles: blank them, same length.
    body = _MASK.sub(lambda m: " " * len(m.group(0)), body)
    sources = list(_SOURCE.finditer(original))
    out: list[Visa] = []
    cursor = 0
    for source in [*sources, None]:
        segment_end = source.start() if source is not None else len(body)
        segment = body[cursor:segment_end]
        code = _code(original[source.start("code") : source.end("code")]) if source else None
        for match in _ARTICLE.finditer(segment):
            if _NOT_ARTICLE_BEFORE.search(segment[: match.start()]):
                continue
            if not re.search(r"articles?\b", body[: cursor + match.start()], re.I):
                continue
            out.append(Visa(article=_article(match), code=code, text=text))
        cursor = source.end() if source is not None else len(body)
    # The last segment (after the last code) has no code of its own: drop its numbers
    # when a code was named (they are dates or list items), keep them otherwise.
    if sources:
        trailing = [v for v in out if v.code is None]
        out = [v for v in out if v not in trailing] if trailing else out
    return _unique(out)[:_MAX_VISA]


def _article(match: re.Match[str]) -> str:
    prefix = re.sub(r"[\s.]", "", match.group("prefix") or "")
    number = re.sub(r"\s", "", match.group("num")).replace("‑", "-")
    number = "1er" if number == "premier" else number
    suffix = (match.group("suffix") or "").strip()
    article = f"{prefix}. {number}" if prefix else number
    return f"{article} {suffix}" if suffix else article


def _code(raw: str) -> str:
    code = re.sub(r"\s+", " ", raw).strip(" ,.;:")
    return (
        code[:1].lower() + code[1:]
        if code[:1] in "CL" and code[:5].lower() in ("code ", "loi n", "loi d")
        else code
    )


def _unique(visas: list[Visa]) -> list[Visa]:
    seen: set[tuple[str, str | None]] = set()
    out: list[Visa] = []
    for visa in visas:
        key = (visa.article, visa.code)
        if key not in seen:
            seen.add(key)
            out.append(visa)
    return out
