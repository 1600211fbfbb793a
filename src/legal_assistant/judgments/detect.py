"""Is this text a court decision? Signals of the genre, each counted once.

A decision names its court in its header, prints "AU NOM DU PEUPLE FRANÇAIS", a date
of hearing, a pourvoi / RG number, "a rendu le présent arrêt", the headings of the
reform ("Faits et procédure", "Réponse de la Cour"), and a ruling ("PAR CES MOTIFS",
"D É C I D E", "REJETTE le pourvoi", "CASSE ET ANNULE", "Ainsi fait et jugé"). A
statute, a code or a contract may cite a court or a decision, but does not carry
the header and the ruling together. The threshold leaves room for a damaged header:
a decision whose first lines are lost still has its headings and its ruling.
"""

from __future__ import annotations

import re

_HEAD_CHARS = 6000
_THRESHOLD = 4
_PEOPLE = re.compile(r"AU\s+NOM\s+DU\s+PEUPLE\s+FRAN[ÇC]AIS", re.I)
_COURT_LINE = re.compile(r"^[ \t]*(?:ARR[ÊE]T\s+DE\s+LA\s+)?COUR\s+DE\s+CASSATION\b", re.M | re.I)
_OTHER_COURT_LINE = re.compile(
    r"^[ \t]*(?:CONSEIL\s+D['’]\s?[ÉE]TAT|COUR\s+ADMINISTRATIVE\s+D['’]\s?APPEL"
    r"|TRIBUNAL\s+ADMINISTRATIF|COUR\s+D['’]\s?APPEL|TRIBUNAL\s+JUDICIAIRE"
    r"|TRIBUNAL\s+DE\s+COMMERCE|CONSEIL\s+DE\s+PRUD)",
    re.M,
)
_HEARING = re.compile(
    r"^[ \t]*(?:Audience\s+publique\s+du|Lecture\s+du|ARR[ÊE]T\s+DU|JUGEMENT\s+DU)\b", re.M | re.I
)
_NUMBER = re.compile(r"Pourvois?\s+n[°o]|\bN°\s*(?:RG\s*)?\d|\bR\.?G\.?\s*n?°?\s*\d{2}/\d", re.I)
_RENDERED = re.compile(
    r"a\s+rendu\s+(?:le\s+pr[ée]sent\s+arr[êe]t|la\s+d[ée]cision\s+suivante"
    r"|l['’]arr[êe]t\s+suivant)",
    re.I,
)
_RULING = re.compile(
    r"^[ \t]*(?:PAR\s+CES\s+MOTIFS|D\s?[ÉE]\s?C\s?I\s?D\s?E\s*:|EN\s+CONS[ÉE]QUENCE,\s+la\s+Cour)",
    re.M,
)
_HEADINGS = re.compile(
    r"^[ \t]*(?:Faits\s+et\s+proc[ée]dure|R[ée]ponse\s+de\s+la\s+Cour|Expos[ée]\s+du\s+litige"
    r"|EXPOS[ÉE]\s+DU\s+LITIGE|MOTIFS\s+DE\s+LA\s+D[ÉE]CISION|[ÉE]nonc[ée]\s+du\s+moyen"
    r"|Consid[ée]rant\s+ce\s+qui\s+suit)\s*:?[ \t]*$",
    re.M,
)
_OPERATIVE = re.compile(
    r"REJETTE\s+(?:le|les)\s+pourvois?|CASSE\s+ET\s+ANNULE|\bINFIRME\b|\bCONFIRME\b|\bANNULE\b"
)
_CLOSING = re.compile(
    r"Ainsi\s+(?:fait\s+et\s+)?jug[ée]|prononc[ée]\s+par\s+(?:le\s+pr[ée]sident"
    r"|mise\s+à\s+disposition)",
    re.I,
)
_HEAD_SIGNALS = ((_COURT_LINE, 2), (_OTHER_COURT_LINE, 2), (_PEOPLE, 1), (_HEARING, 1),
                 (_NUMBER, 1), (_RENDERED, 1))  # fmt: skip
_BODY_SIGNALS = ((_RULING, 2), (_HEADINGS, 1), (_OPERATIVE, 1), (_CLOSING, 1))


def judgment_score(text: str) -> int:
    head = text[:_HEAD_CHARS]
    score = sum(weight for pattern, weight in _HEAD_SIGNALS if pattern.search(head))
    score += sum(weight for pattern, weight in _BODY_SIGNALS if pattern.search(text))
    return score


def is_judgment(text: str) -> bool:
    return judgment_score(text) >= _THRESHOLD and _has_ruling_or_court(text)


def _has_ruling_or_court(text: str) -> bool:
    """Both kinds of evidence are needed: the genre's header or headings, and a ruling."""
    head = text[:_HEAD_CHARS]
    court = bool(_COURT_LINE.search(head) or _OTHER_COURT_LINE.search(head))
    ruling = any(p.search(text) for p in (_RULING, _OPERATIVE, _CLOSING))
    return ruling and (court or bool(_HEADINGS.search(text)))
