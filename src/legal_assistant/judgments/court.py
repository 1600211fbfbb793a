"""Which court speaks, and in which formation: read from the decision's header lines.

"COUR DE CASSATION" / "ARRÊT DE LA COUR DE CASSATION, DEUXIÈME CHAMBRE CIVILE, DU …",
"CONSEIL D'ETAT", "COUR ADMINISTRATIVE D'APPEL DE LYON", "TRIBUNAL ADMINISTRATIF DE
PARIS", "COUR D'APPEL DE PARIS", "TRIBUNAL JUDICIAIRE DE LYON". Only the header is read:
a court named inside a sentence of the body is a court the decision talks about.
"""

from __future__ import annotations

import re

from legal_assistant.judgments.dates import fold

_PLACE_SMALL = frozenset({"de", "du", "des", "en", "sur", "la", "le", "les", "et", "d", "l"})
_A = "['’]"  # straight or typographic apostrophe
# (folded pattern at a line start, canonical name, takes a place)
_COURTS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"(?:arret de la )?cour de cassation\b"), "Cour de cassation", False),
    (re.compile(rf"conseil d{_A}\s?etat\b"), "Conseil d'État", False),
    (re.compile(rf"cour administrative d{_A}\s?appel (?:de |d{_A}\s?)"),
     "Cour administrative d'appel", True),
    (re.compile(r"tribunal administratif (?:de |d['’]\s?)"), "Tribunal administratif", True),
    (re.compile(rf"cour d{_A}\s?appel (?:de |d{_A}\s?)"), "Cour d'appel", True),
    (re.compile(r"tribunal judiciaire (?:de |d['’]\s?)"), "Tribunal judiciaire", True),
    (re.compile(r"tribunal de commerce (?:de |d['’]\s?)"), "Tribunal de commerce", True),
    (re.compile(rf"conseil de prud{_A}\s?hommes (?:de |d{_A}\s?)"), "Conseil de prud'hommes", True),
)  # fmt: skip
_HEADER_LINES = 60  # the court is named in the first lines, never deep in the text
_FORMATIONS = {
    "civ. 1": "Première chambre civile",
    "civ. 2": "Deuxième chambre civile",
    "civ. 3": "Troisième chambre civile",
    "comm.": "Chambre commerciale financière et économique",
    "com.": "Chambre commerciale financière et économique",
    "soc.": "Chambre sociale",
    "crim.": "Chambre criminelle",
}
_ARRET_LINE = re.compile(
    r"^\s*ARR[ÊE]T\s+DE\s+LA\s+COUR\s+DE\s+CASSATION\s*,\s*(?P<formation>.+?)\s*,?\s*\n?\s*DU\s",
    re.M | re.S,
)
_SITTING = re.compile(
    r"si[ée]geant\s+en\s+(?P<formation>ASSEMBL[ÉE]E\s+PL[ÉE]NI[ÈE]RE|CHAMBRE\s+MIXTE)", re.I
)
_CHAMBER = (
    r"(?:premi[èe]re|deuxi[èe]me|troisi[èe]me)\s+chambre\s+civile|chambre\s+(?:commerciale"
    r"(?:,?\s+financi[èe]re\s+et\s+[ée]conomique)?|sociale|criminelle|mixte)|assembl[ée]e\s+pl[ée]ni[èe]re"
)
_SENTENCE_CHAMBER = re.compile(
    rf"(?:\bla|\bl['’]|,)\s*(?P<formation>{_CHAMBER})\s*(?:de\s+la\s+Cour\s+de\s+cassation|,\s*et\s+prononc)",
    re.I,
)
_FIRST_LINE_CODE = re.compile(r"^\s*(?P<code>CIV\.\s*[123]|COMM?\.|MM\.|SOC\.|CRIM\.)", re.I)
_OTHER_FORMATION = re.compile(
    r"^\s*(?P<formation>P[ôo]le\s+\d+\s*[-–]\s*[Cc]hambre\s+\d+"
    r"|\d+(?:e|re|ère|ème)\s+chambre[^\n]{0,40}"
    r"|(?:\d+(?:e|ème|re)\s*[-–]\s*)*\d+(?:e|ème|re)\s+chambres?\s+réunies"
    r"|Section du contentieux)\s*$",
    re.M,
)


def court(head: str) -> str | None:
    """The court named by the header's first lines, with its seat when it has one."""
    for i, line in enumerate(head.splitlines()):
        if i >= _HEADER_LINES:
            break
        folded = fold(line.strip())
        for pattern, name, seated in _COURTS:
            match = pattern.match(folded)
            if match is None:
                continue
            if not seated:
                return name
            place = line.strip()[match.end() :].strip(" ,.:")
            place = re.split(r"\s{2,}|\s[-–(]|,", place)[0].strip()
            if not place or len(place) > 40:
                return None  # a sentence, not a header line
            return f"{name} {_connector(place)}{_place_case(place)}"
    return None


def _connector(place: str) -> str:
    return "d'" if fold(place[:1]) in "aeiouy" and place[:1] else "de "


def _place_case(place: str) -> str:
    words = re.split(r"([\s-])", place.lower())
    out = []
    for i, word in enumerate(words):
        keep_small = word in _PLACE_SMALL and i != 0
        out.append(word if keep_small or not word else word[0].upper() + word[1:])
    return "".join(out)


def formation(head: str, whole: str) -> str | None:
    """The chamber: the "ARRÊT DE LA COUR DE CASSATION, <formation>, DU …" line, else the
    "la <formation> de la Cour de cassation" sentence or the closing "Ainsi fait et jugé
    par la Cour de cassation, <formation>, et prononcé", else the first-line code
    ("CIV. 2"), else another court's chamber line ("Pôle 4 - Chambre 9")."""
    sitting = _SITTING.search(head)
    if sitting:
        return _sentence_case(sitting.group("formation"))
    line = _ARRET_LINE.search(head)
    if line:
        found = re.search(_CHAMBER, line.group("formation"), re.I)
        if found:
            return _sentence_case(found.group(0))
    for text in (head, whole[-3000:]):
        sentence = _SENTENCE_CHAMBER.search(text)
        if sentence:
            return _sentence_case(sentence.group("formation"))
    first = _FIRST_LINE_CODE.match(head)
    if first:
        code = fold(
            re.sub(r"\s+", " ", first.group("code")).replace("civ.", "civ. ").replace("  ", " ")
        )
        code = "comm." if code == "mm." else code  # "MM." is "COMM." cut short, as published
        return _FORMATIONS.get(code.strip())
    other = _OTHER_FORMATION.search(head[:3000])
    return other.group("formation").strip() if other else None


def _sentence_case(text: str) -> str:
    text = re.sub(r"\s+", " ", text.replace(",", " ")).strip().lower()
    return text[:1].upper() + text[1:]
