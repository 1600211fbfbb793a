"""The header of a decision: its date, numbers, solution, president, publication code,
ECLI and the decision it reviews. Each rule reads one thing where the genre prints it;
what is not printed (or not readable) is None.

`head` is the top block (before "RÉPUBLIQUE FRANÇAISE" / the "ARRÊT DE LA COUR…" line,
where the Cour de cassation prints date, solution, president, n°), `intro` the
introduction zone (parties and the attacked decision), `dispositif` the ruling.
"""

from __future__ import annotations

import re

from legal_assistant.judgments.dates import DATE, fold, iso_date
from legal_assistant.judgments.model import Attacked

_LINE_DATE = re.compile(
    r"^[ \t]*(?:Audience\s+publique\s+du|Lecture\s+du|S[ée]ance\s+du|Décision\s+du"
    r"|Rendu\s+public\s+le)"
    rf"\s+{DATE.pattern}[ \t]*$",
    re.M | re.I,
)
_TITLE_DATE = re.compile(
    r"^[ \t]*(?:ARR[ÊE]T|JUGEMENT|ORDONNANCE|D[ÉE]CISION)\b[^\n]{0,200}(?:\n[ \t]*)?"
    rf"\bDU\s+{DATE.pattern}",
    re.M | re.I,
)
_BARE_DATE = re.compile(rf"^[ \t]*{DATE.pattern}[ \t]*$", re.M)
_POURVOI = re.compile(r"(?<![\d.-])(\d{2}-\d{2}\.\d{3})(?![\d.])")
_RG = re.compile(r"\bR\.?\s?G\.?\s*(?:n°|N°|no)?\s*:?\s*(\d{2}/\d{4,6})\b")
_ADMIN_NUMBER = re.compile(r"^[ \t]*N°\s*(\d{6}|\d{2}[A-Z]{2}\d{5}|\d{7})\b", re.M)
_SOLUTION_WORDS = (
    r"rejet|cassation|annulation|irrecevabilite|non-lieu a (?:renvoi|statuer)|desistement"
    r"|radiation|decheance|renvoi|avis|qpc incidente"
)
_SOLUTION_LINE = re.compile(
    rf"(?:{_SOLUTION_WORDS})(?:\s+(?:partielle|partiel|partiellement|sans renvoi|totale|et|"
    rf"non-lieu|a statuer|irrecevabilite|rejet|cassation|annulation|desistement|renvoi))*"
)
_PRESIDENT = re.compile(
    r"^[ \t]*(?P<name>(?:M\.|Mme|Mlle|MM\.)\s+[^\n,()]{2,60}?)\s*[,(]?\s*"
    r"(?P<role>pr[ée]sidente?\b|conseill[eè]re?\s+doyen|doyen|conseill[eè]re?\s+le\s+plus\s+ancien)",
    re.M,
)
_PRESIDENT_LABEL = re.compile(
    r"^[ \t]*Pr[ée]sid(?:ent|ente|ée? par)\s*:?\s*(?P<name>(?:M\.|Mme)\s+[^\n,]{2,60})", re.M
)
_PUBLICATION = re.compile(r"(?<![\w-])(?:FS|FP|FRH|FR|F)-[A-Z](?:\s*\+\s*[A-Z])*(?![\w-])")
_ECLI = re.compile(r"\bECLI:[A-Z]{2}:[A-Z]+:\d{4}:[A-Z0-9.]+[A-Z0-9]")
_DECISION_NOUN = r"(?:l['’]arr[êe]t|le\s+jugement|l['’]ordonnance|la\s+d[ée]cision|la\s+sentence)"
_ATTACKED_RENDERED = re.compile(
    rf"contre\s+{_DECISION_NOUN}[^,;\n]{{0,80}}?\s+rendue?\s+le\s+{DATE.pattern}"
    # "…, sur renvoi après cassation (Civ. 2e, 3 mars 2021, pourvoi n° …), par la cour…"
    r"(?:\s*,\s*sur\s+renvoi[^;\n]{0,200}?,)?"
    rf"\s*,?\s+par\s+(?P<court>[^,;(\n]{{3,160}})",
    re.I,
)
_ATTACKED_DATED = re.compile(
    rf"contre\s+{_DECISION_NOUN}(?:\s+n°\s*[\w/.-]+)?\s+(?:de\s+la|du|de\s+l['’])\s*"
    rf"(?P<court>[^;\n]{{3,200}}?),?\s+en\s+date\s+du\s+{DATE.pattern}",
    re.I,
)


def decision_date(head: str) -> str | None:
    """ "Audience publique du 5 décembre 2024" (a line of its own: the hearing's "après
    débats en l'audience publique du …" is inside a sentence), else the title line
    "ARRÊT … DU 5 DÉCEMBRE 2024", else a date alone on its line ("10 DÉCEMBRE 2024")."""
    for pattern in (_LINE_DATE, _TITLE_DATE, _BARE_DATE):
        for match in pattern.finditer(head):
            found = iso_date(match)
            if found:
                return found
    return None


def numbers(head: str, intro: str) -> tuple[str, ...]:
    """Pourvoi numbers printed in the header ("Pourvoi n° X 22-22.395", several when
    joined), else those the introduction says were lodged; RG and administrative
    numbers of other courts."""
    found = _unique(m.group(1) for m in _POURVOI.finditer(head))
    if not found:
        # "a formé le pourvoi n° X 22-22.395" / "ont formé les pourvois n° … et …", not a
        # pourvoi the text quotes ("(Crim., 20 mars 2024, pourvoi n° 23-85.065)").
        lodged = re.finditer(
            r"form[ée]s?\s+(?:le|les|un|des)\s+pourvois?\s+n[°o]s?\s*"
            r"((?:[A-Z]\s)?\d{2}-\d{2}\.\d{3}(?:[^\n.]{0,40}?\d{2}-\d{2}\.\d{3})*)",
            intro,
        )
        found = _unique(n for m in lodged for n in _POURVOI.findall(m.group(1)))
    found += [n for n in _unique(m.group(1) for m in _RG.finditer(head)) if n not in found]
    found += [
        n for n in _unique(m.group(1) for m in _ADMIN_NUMBER.finditer(head)) if n not in found
    ]
    return tuple(found)


def _unique(items: object) -> list[str]:
    out: list[str] = []
    for item in items:  # type: ignore[attr-defined]
        if item not in out:
            out.append(item)
    return out


def solution(head: str, dispositif: str) -> str | None:
    """The solution line of the header ("Cassation partielle", "REJET"), else what the
    ruling's operative verbs say ("REJETTE le pourvoi" -> "Rejet")."""
    for line in head.splitlines():
        stripped = line.strip()
        if 3 <= len(stripped) <= 60 and _SOLUTION_LINE.fullmatch(fold(stripped)):
            return _sentence_case(stripped)
    return _solution_from_ruling(dispositif)


def _solution_from_ruling(dispositif: str) -> str | None:
    ruling = fold(dispositif[:4000])
    if not ruling:
        return None
    if re.search(r"\bcasse et annule\b", ruling):
        partial = re.search(r"casse et annule,?\s+(?:mais\s+)?(?:seulement|sauf|en ce qu)", ruling)
        solution = "Cassation partielle" if partial else "Cassation"
        if re.search(r"dit\s+n['’]y\s+avoir\s+lieu\s+a\s+renvoi", ruling):
            solution += " sans renvoi"
        return solution
    if re.search(r"\brejette\s+(?:le|les)\s+pourvois?\b", ruling):
        return "Rejet"
    if re.search(r"\bannule\b", ruling):
        partial = re.search(r"annule,?\s+(?:mais\s+)?(?:seulement|sauf|en ce qu)", ruling)
        return "Annulation partielle" if partial else "Annulation"
    if re.search(
        r"declare\s+(?:le\s+pourvoi\s+)?irrecevable|pourvoi\s+(?:est\s+)?irrecevable", ruling
    ):
        return "Irrecevabilité"
    if re.search(
        r"n['’]y\s+a\s+pas\s+lieu\s+de\s+renvoyer|dit\s+n['’]y\s+avoir\s+lieu\s+(?:a|de)\s+renvoyer",
        ruling,
    ):
        return "Non-lieu à renvoi"
    if "desistement" in ruling:
        return "Désistement"
    if "radiation" in ruling:
        return "Radiation"
    return None


def _sentence_case(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().lower()
    return text[:1].upper() + text[1:]


def president(head: str) -> str | None:
    """ "Mme MARTINEL, président", "M. BONNAL président,", "Mme X, conseiller doyen
    faisant fonction de président", "Président : M. X"."""
    for match in _PRESIDENT.finditer(head):
        role = fold(match.group("role"))
        following = head[match.end() : match.end() + 60]
        if role.startswith("presid") or "president" in fold(following.split("\n\n")[0]):
            return re.sub(r"\s+", " ", match.group("name")).strip()
    label = _PRESIDENT_LABEL.search(head)
    return re.sub(r"\s+", " ", label.group("name")).strip() if label else None


def publication(head: str) -> str | None:
    """The publication code as printed ("F-B", "FS-B+R", "F-B + R", "FS-P+B+I")."""
    match = _PUBLICATION.search(head)
    return re.sub(r"\s+", " ", match.group(0)) if match else None


def ecli(text: str) -> str | None:
    match = _ECLI.search(text)
    return match.group(0) if match else None


def attacked(intro: str) -> Attacked | None:
    """ "contre l'arrêt rendu le 25 avril 2022 par la cour d'appel d'Amiens (…)", or the
    criminal chamber's "contre l'arrêt de la chambre de l'instruction de la cour d'appel
    de Paris, 5e section, en date du 6 mai 2024"."""
    match = _ATTACKED_RENDERED.search(intro)
    if match is not None:
        return Attacked(court=_court_name(match.group("court")), date=iso_date(match))
    match = _ATTACKED_DATED.search(intro)
    if match is not None:
        return Attacked(court=_court_name(match.group("court")), date=iso_date(match))
    return None


def _court_name(raw: str) -> str | None:
    name = re.split(r"\s+(?:dans\s+le\s+litige|statuant|au\s+profit|qui,|sur\s+renvoi)\b", raw)[0]
    name = re.sub(r"^(?:la|le|l['’])\s*", "", name.strip(" ,."), flags=re.I)
    name = re.sub(r"\s+", " ", name).strip(" ,.")
    # "la cour d'appel de Paris, 5e section": the chamber after the comma is not the court.
    name = name.split(",")[0].strip()
    if not name or len(name) > 150:
        return None
    return name[:1].upper() + name[1:]
