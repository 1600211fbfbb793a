"""Zones of a decision, named as the Cour de cassation names them (Judilibre):
introduction, expose, moyens, motivations, dispositif, annexes.

The headings the 2019 drafting reform prints, each alone on its line, open the zones:
"Faits et procédure" (expose), "Examen du/des moyen(s)", "Sur le … moyen", "Enoncé du
moyen" (moyens), "Réponse de la Cour" (motivations), "PAR CES MOTIFS" (dispositif),
"MOYENS ANNEXES" / "Moyen produit par …" after the ruling (annexes). A decision
interleaves moyens and motivations once per ground. Older decisions and other courts
are read as far as their headings allow: "Attendu, selon l'arrêt attaqué" opens the
expose, "Vu …" / "Attendu que …" / "Mais attendu" after a ground open the reasoning,
"EXPOSÉ DU LITIGE" / "MOTIFS DE LA DÉCISION" (cours d'appel), "Considérant ce qui
suit" / "D É C I D E" (administrative courts).

Two details follow the Court's own zoning: under "Sur le moyen, pris en ses …
branches", a paragraph that answers without an "Enoncé du moyen" (the art. 1014 CPC
dismissal) is motivations; "Ainsi fait et jugé …" closes the dispositif.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from legal_assistant.judgments.model import Zone

_SHORT = 140  # a heading line is short

_EXPOSE = re.compile(
    r"(?:Faits\s+et\s+proc[ée]dure|FAITS\s+ET\s+PROC[ÉE]DURE|Expos[ée]\s+du\s+litige|EXPOS[ÉE]\s+DU\s+LITIGE"
    r"|Rappel\s+des\s+faits(?:\s+et\s+de\s+la\s+proc[ée]dure)?|FAITS(?:\s*,\s*PROC[ÉE]DURE)?[^\n]{0,40}"
    r"|Vu\s+la\s+proc[ée]dure\s+suivante)\s*:?"
)
_MOYENS = re.compile(
    r"(?:Examen\s+(?:du|des)\s+moyens?|[ÉE]nonc[ée]\s+(?:du|des)\s+moyens?|Expos[ée]\s+(?:du|des)\s+moyens?"
    r"|(?:(?:Mais|Et|Et\s+mais)\s+)?[Ss]ur\s+(?:le|les|la|l['’])\s*[^\n]{0,120}?\bmoyens?\b[^\n]{0,120}"
    r"|(?:(?:Mais|Et)\s+)?[Ss]ur\s+le\s+pourvoi[^\n]{0,80}"
    r"|PR[ÉE]TENTIONS\s+ET\s+MOYENS\s+DES\s+PARTIES|Pr[ée]tentions\s+et\s+moyens\s+des\s+parties"
    r"|MOYENS\s+DES\s+PARTIES|Moyens\s+des\s+parties)\s*:?"
)
_MOTIVATIONS = re.compile(
    r"(?:R[ée]ponse\s+de\s+la\s+[Cc]our|MOTIFS\s+DE\s+LA\s+D[ÉE]CISION|Motifs\s+de\s+la\s+d[ée]cision"
    r"|MOTIVATION|Motivation|SUR\s+CE|Sur\s+ce|Considérant\s+ce\s+qui\s+suit)\s*:?"
)
_DISPOSITIF = re.compile(
    r"(?:PAR\s+CES\s+MOTIFS|EN\s+CONS[ÉE]QUENCE\s*,\s*la\s+Cour|D\s?[ÉE]\s?C\s?I\s?D\s?E\s*:)"
)
_ANNEXES = re.compile(
    r"(?:MOYENS?\s+ANNEX[ÉE]S?|Moyens?\s+annex[ée]s?|Moyens?\s+produits?\s+par|MOYEN\s+UNIQUE\s+DE\s+CASSATION"
    r"|PREMIER\s+MOYEN\s+DE\s+CASSATION|ANNEXES?\b)"
)
_ANNEX_TITLE = re.compile(r"MOYENS?\s+ANNEX[ÉE]S?\b")
_PRODUCED = re.compile(r"Moyens?\s+produits?\s+par\b")
_NEW_REASONING = re.compile(r"Port[ée]e\s+et\s+cons[ée]quences\s+de\s+la\s+cassation\s*:?")
# Lines that answer a ground without a heading: old style, or the art. 1014 dismissal.
_REASONING_START = re.compile(
    r"(?:Vu\s|(?:Mais\s+)?[Aa]ttendu\s+que|Mais\s+attendu|Attendu\s+qu['’]|En\s+application\s+de\s+l['’]article\s+1014)"
)
_GRIEF = re.compile(
    r"fai(?:t|saient)\s+grief|font\s+grief|reproche|critique\s+l['’]arr[êe]t|Le\s+moyen\s+(?:fait|fait\s+grief|critique|reproche)|alors\s+(?:«|:)"
)
_OLD_ANSWER = re.compile(r"(?:Vu\s|Mais\s+attendu|Attendu\s+qu['’e])")
_OLD_EXPOSE = re.compile(
    r"(?:Attendu\s*,\s*selon\s+l['’]arr[êe]t|Selon\s+l['’]arr[êe]t\s+attaqu[ée])"
)
_NUMBERED = re.compile(r"\d{1,3}\.\s+")


@dataclass(frozen=True, slots=True)
class Heading:
    start: int  # offset of the line in the joined text
    end: int  # end of the line
    kind: Zone | None  # the zone it opens, None for a sub-heading
    title: str


@dataclass(slots=True)
class ZoneCut:
    zone: Zone
    start: int
    title: str | None


def lines(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]


def cut_zones(text: str) -> list[ZoneCut]:
    """Where each zone starts, in order: [ZoneCut(zone, start, title)], the first at 0."""
    cuts = [ZoneCut("introduction", 0, None)]
    current: Zone = "introduction"
    seen_ground_heading = False  # a "Sur le … moyen" whose statement or answer is pending
    seen_statement = False  # "Enoncé du moyen" (or a grief) under the current ground
    for start, end in lines(text):
        raw = text[start:end]
        line = raw.strip()
        if not line:
            continue
        offset = start + (len(raw) - len(raw.lstrip()))
        short = len(line) <= _SHORT

        def open_zone(zone: Zone, title: str | None, at: int = offset) -> None:
            nonlocal current
            if zone != current:
                cuts.append(ZoneCut(zone, at, title))
                current = zone

        if current == "dispositif":
            inline = _ANNEX_TITLE.search(line)
            if inline is not None:  # also when pasted after the closing formula
                at = offset + inline.start()
                open_zone("annexes", line[inline.start() :].strip(), at)
            elif (
                short
                and _ANNEXES.match(line)
                and (_looks_like_heading(line) or _PRODUCED.match(line))
            ):
                open_zone("annexes", line)
            continue
        if current == "annexes":
            continue
        if _DISPOSITIF.match(line):
            open_zone("dispositif", _title(line))
            continue
        if short and _EXPOSE.fullmatch(line) and current == "introduction":
            open_zone("expose", line)
            continue
        if short and _NEW_REASONING.fullmatch(line) and current == "motivations":
            # The Court zones it as a segment of its own (a new pair in the outline).
            cuts.append(ZoneCut("motivations", offset, line))
            continue
        if short and _MOTIVATIONS.fullmatch(line):
            open_zone("motivations", line)
            seen_ground_heading = False
            continue
        if short and _MOYENS.fullmatch(line) and _looks_like_heading(line):
            if line.lower().startswith(("enonc", "énonc", "expos")):
                seen_statement = True
            else:
                seen_ground_heading, seen_statement = True, False
            open_zone("moyens", line)
            continue
        if current == "introduction" and _OLD_EXPOSE.match(line):
            open_zone("expose", None)
            continue
        if current == "moyens":
            body = _NUMBERED.sub("", line, count=1) if _NUMBERED.match(line) else line
            if _GRIEF.search(body[:400]):
                seen_statement = True  # the ground itself: "X fait grief à l'arrêt…"
            elif _OLD_ANSWER.match(body) or (
                not seen_statement
                and seen_ground_heading
                and (_NUMBERED.match(line) or _REASONING_START.match(body))
            ):
                # The Court answers: a visa, "Mais attendu que…" (older decisions), or a
                # paragraph under a ground heading with no statement of the ground.
                open_zone("motivations", None)
                seen_ground_heading = False
    return cuts


def _looks_like_heading(line: str) -> bool:
    """A heading is a title, not a sentence: it does not end like one."""
    return not line.rstrip().endswith((".", ";", ","))


def _title(line: str) -> str:
    """ "PAR CES MOTIFS, la Cour :" -> "PAR CES MOTIFS"."""
    return re.split(r"\s*[,:]", line, maxsplit=1)[0].strip()


def heading_starts(text: str) -> list[int]:
    """Offsets of every heading line (zone headings, ground sub-headings, visa lines):
    a numbered paragraph ends before the next one."""
    starts: list[int] = []
    for start, end in lines(text):
        line = text[start:end].strip()
        if not line or len(line) > _SHORT:
            if line.startswith(("PAR CES MOTIFS", "Vu ")):
                starts.append(start)
            continue
        if (
            _EXPOSE.fullmatch(line)
            or _MOTIVATIONS.fullmatch(line)
            or (_MOYENS.fullmatch(line) and _looks_like_heading(line))
            or _DISPOSITIF.match(line)
            or line.startswith("Vu ")
            or (_looks_like_heading(line) and _SUBHEADING.fullmatch(line))
        ):
            starts.append(start)
    return starts


_SUBHEADING = re.compile(
    r"(?:Recevabilit[ée]\s+[^\n]{0,60}|Bien-fond[ée]\s+[^\n]{0,60}|Port[ée]e\s+et\s+cons[ée]quences\s+de\s+la\s+cassation"
    r"|Jonction|D[ée]ch[ée]ance\s+[^\n]{0,60}|Désistement\s+partiel|Mise\s+hors\s+de\s+cause|Application\s+de\s+l['’]article\s+[^\n]{0,60}"
    r"|Rectification\s+d['’]erreur\s+matérielle)"
)
