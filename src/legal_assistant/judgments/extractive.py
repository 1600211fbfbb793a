"""The extractive fiche: always available, no model, well under a second.

Every statement is the decision's own words, quoted (« … ») and condensed to its first
sentence or clause, with the paragraph it comes from ([§ n]) — or, for the text the
Court does not number (header, visa, ruling), the span it quotes. Nothing is invented:
`probleme` and `portee` need a model and say so.

Where each section reads (the Judilibre zones the parser found):
- presentation: the parsed header (court, formation, date, numbers, publication);
- faits / procedure: the `expose` paragraphs, split by what they narrate (a paragraph
  that seizes a court, appeals or cites a judgment is procedure), then the attacked
  decision as the introduction prints it;
- moyens: the `moyens` paragraphs that state a ground ("fait grief à l'arrêt …, alors
  « que … »"): the complaint, then the opening of the argument;
- solution: the ruling (first line after "PAR CES MOTIFS"), the visa, the rule the Court
  states ("Il résulte de …") and the decisive paragraph ("En statuant ainsi …" for a
  cassation, the one before "Le moyen n'est pas fondé" for a rejection).
"""

from __future__ import annotations

import re

from legal_assistant.errors import Language
from legal_assistant.judgments.checks import check_statement
from legal_assistant.judgments.decision import Decision
from legal_assistant.judgments.fiche import (
    SECTION_KEYS,
    TITLES,
    Section,
    SectionKey,
    Statement,
)
from legal_assistant.judgments.quoting import Unit, condense, long_date, paragraph_body, units

_MAX_FAITS = 4
_MAX_PROCEDURE = 4
_MAX_MOYENS = 3

_PROCEDURE = re.compile(
    r"\b(a|ont) (saisi|assigné|interjeté|relevé appel|formé (un |une )?(recours|opposition"
    r"|appel|pourvoi)|contesté)|\bsaisi[es]? d'un recours|\bjuridiction|\btribunal|"
    r"\bconseil de prud'hommes|\bjugement\b|\bordonnance\b|\bpoursuivi|\brenvoy[ée]",
    re.IGNORECASE,
)
_GRIEF = re.compile(r"\bfai(t|sait|ont) grief\b|\breproche\b|\bcritique", re.IGNORECASE)
_LEAD_IN = re.compile(r"ce qui suit\.?$")
_ARGUMENT = re.compile(r",?\s*alors(?:, selon le moyen,)?\s*«\s*", re.IGNORECASE)
_RULE = re.compile(r"^(Il (résulte|se déduit|s'en déduit|en résulte|s'ensuit))", re.IGNORECASE)
_TEXT_RULE = re.compile(r"^(Selon (ce|ces|le premier)|Aux termes d|En application d)")
_CASSATION_REASON = re.compile(
    r"^En (statuant|se déterminant|se prononçant) (ainsi|de la sorte)|a violé|"
    r"privé sa décision de base légale|méconnu",
    re.IGNORECASE,
)
_REJECTION_REASON = re.compile(
    r"exactement|à bon droit|légalement justifié|a pu (en )?dédui|souverainement|"
    r"a retenu à juste titre|en a déduit",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"n'est(,)? (donc|dès lors|par conséquent)?,? ?pas fondé|ne peut (donc )?être accueilli|"
    r"La cassation est encourue|décision spécialement motivée|Recevabilité|"
    r"il est fait application de l'article 1015|a été avisé",
    re.IGNORECASE,
)
_VISA_LINE = re.compile(r"^Vu (l'|les |la |le )[^\n]+", re.MULTILINE)
_ATTACKED = re.compile(
    r"contre (l'arrêt|le jugement|l'ordonnance|la décision)( n° (RG : )?[^ ,]+)?"
    r"( (de|du) [^,;]{3,120}?)? rendue? le [^,;]{4,40}?( par (la|le|l') ?[^,;()\n]{3,120})?"
    r"(?=[,;(\n]|$)",
    re.IGNORECASE,
)
_RULING_START = re.compile(r"PAR CES MOTIFS[^\n]*\n", re.IGNORECASE)

_SOLUTION_EN = {
    "rejet": "appeal dismissed",
    "cassation": "judgment quashed",
    "cassation partielle": "judgment partly quashed",
    "cassation sans renvoi": "quashed without referral",
    "irrecevabilité": "appeal inadmissible",
    "non-lieu à renvoi": "no referral",
    "annulation": "annulled",
    "désistement": "appeal withdrawn",
}


def _quoted(quote: str, truncated: bool) -> str:
    return f"« {quote} »" + (" […]" if truncated else "")


class ExtractiveFiche:
    """Builds the extractive sections of one decision, in one language."""

    def __init__(self, decision: Decision, language: Language = "fr") -> None:
        self.decision = decision
        self.j = decision.judgment
        self.lang: Language = language

    def _t(self, fr: str, en: str) -> str:
        return fr if self.lang == "fr" else en

    async def _from_unit(self, unit: Unit, label: str = "") -> Statement:
        quote, cut = condense(paragraph_body(unit.text))
        text = f"{label}{_quoted(quote, cut)}"
        if unit.n is not None:
            return await check_statement(self.decision, text, [unit.n], quotes=[quote])
        return await check_statement(self.decision, text, quotes=[quote])

    def _made(
        self, key: SectionKey, statements: list[Statement], note: str | None = None
    ) -> Section:
        return Section(key, TITLES[self.lang][key], "extracted", tuple(statements), note)

    # ------------------------------------------------------------------ sections
    async def presentation(self) -> Section:
        j = self.j
        parts = [j.court or self._t("Juridiction non lue", "Court not read")]
        if j.formation:
            parts.append(j.formation)
        date = long_date(j.date, self.lang)
        if date:
            parts.append(self._t(f"arrêt du {date}", f"decision of {date}"))
        if j.numbers:
            parts.append(self._t("pourvoi n° ", "appeal no. ") + ", ".join(j.numbers))
        if j.publication:
            parts.append(j.publication)
        text = ", ".join(parts) + "."
        # The header is read, not written: it is verified when the numbers it gives are
        # printed in the decision (a damaged header leaves them out rather than guessing).
        anchors = [a for a in (self.decision.find(n) for n in j.numbers) if a is not None]
        ok = bool(j.court) and bool(anchors) and len(anchors) == len(j.numbers)
        statements = [
            Statement(text, (), ok, tuple(anchors[:1]), None if ok else "header_incomplete")
        ]
        return self._made("presentation", statements)

    def _expose(self) -> tuple[list[Unit], list[Unit]]:
        faits: list[Unit] = []
        procedure: list[Unit] = []
        narrated = [u for u in units(self.decision, "expose") if not _LEAD_IN.search(u.text)]
        for i, unit in enumerate(narrated):
            if i > 0 and _PROCEDURE.search(unit.text):
                procedure.append(unit)
            else:
                faits.append(unit)
        return faits, procedure

    async def faits(self) -> Section:
        faits, _ = self._expose()
        statements = [await self._from_unit(u) for u in faits[:_MAX_FAITS]]
        note = (
            None
            if statements
            else self._t(
                "Aucun exposé des faits n'a été repéré dans la décision.",
                "No statement of facts was found in the decision.",
            )
        )
        return self._made("faits", statements, note)

    async def attacked(self) -> Statement | None:
        intro = self.decision.zones("introduction")
        for span in intro:
            m = _ATTACKED.search(self.decision.span_text(span))
            if m:
                quote = m.group().strip()
                label = self._t("Décision attaquée : ", "Decision under appeal: ")
                return await check_statement(self.decision, f"{label}« {quote} »", quotes=[quote])
        return None

    async def procedure(self) -> Section:
        _, procedure = self._expose()
        statements = [await self._from_unit(u) for u in procedure[:_MAX_PROCEDURE]]
        attacked = await self.attacked()
        if attacked is not None:
            statements.append(attacked)
        note = (
            None
            if statements
            else self._t(
                "Aucune étape de la procédure n'a été repérée dans la décision.",
                "No procedural step was found in the decision.",
            )
        )
        return self._made("procedure", statements, note)

    async def moyens(self) -> Section:
        statements: list[Statement] = []
        candidates = units(self.decision, "moyens")
        grounds = [u for u in candidates if _GRIEF.search(u.text)] or candidates[:1]
        for unit in grounds[:_MAX_MOYENS]:
            statements.append(await self._ground(unit))
        note = (
            None
            if statements
            else self._t(
                "Aucun moyen n'a été repéré dans la décision.",
                "No ground of appeal was found in the decision.",
            )
        )
        return self._made("moyens", statements, note)

    async def _ground(self, unit: Unit) -> Statement:
        body = paragraph_body(unit.text)
        m = _ARGUMENT.search(body)
        if m is None or unit.n is None:
            return await self._from_unit(unit)
        complaint, cut_a = condense(body[: m.start()])
        argument, cut_b = condense(body[m.end() :].rstrip(" »."), 260)
        text = (
            f"{_quoted(complaint, cut_a)} ; "
            + self._t("le moyen soutient ", "the ground argues ")
            + _quoted(argument, cut_b)
        )
        return await check_statement(self.decision, text, [unit.n], quotes=[complaint, argument])

    def needs_model(self, key: SectionKey) -> Section:
        what = {
            "probleme": self._t("le problème de droit", "the legal issue"),
            "portee": self._t("la portée de l'arrêt", "the significance of the decision"),
        }.get(key, key)
        note = self._t(
            f"Un modèle de langage est nécessaire pour formuler {what} : choisissez un "
            "modèle puis régénérez la fiche. Rien n'est inventé ici.",
            f"A language model is needed to write {what}: choose a model, then "
            "regenerate the fiche. Nothing is invented here.",
        )
        return self._made(key, [], note)

    async def solution(self) -> Section:
        statements: list[Statement] = []
        ruling = await self._ruling()
        if ruling is not None:
            statements.append(ruling)
        statements.extend(await self._visas())
        motivations = [
            u
            for u in units(self.decision, "motivations")
            if not _BOILERPLATE.search(u.text) and not paragraph_body(u.text).startswith("Vu ")
        ]
        chosen: list[Unit] = []
        rule = next((u for u in motivations if _RULE.match(paragraph_body(u.text))), None)
        rule = rule or next(
            (u for u in motivations if _TEXT_RULE.match(paragraph_body(u.text))), None
        )
        if rule is not None:
            chosen.append(rule)
        solution = (self.j.solution or "").lower()
        reason_re = (
            _CASSATION_REASON
            if solution.startswith(("cassation", "annulation"))
            else _REJECTION_REASON
        )
        reasons = [u for u in motivations if reason_re.search(u.text) and u not in chosen]
        decisive = reasons[-1] if reasons else (motivations[-1] if motivations else None)
        if decisive is not None and decisive not in chosen:
            chosen.append(decisive)
        for unit in chosen:
            statements.append(await self._from_unit(unit))
        note = (
            None
            if statements
            else self._t(
                "Ni le dispositif ni la motivation n'ont été repérés dans la décision.",
                "Neither the ruling nor the reasoning was found in the decision.",
            )
        )
        return self._made("solution", statements, note)

    async def _ruling(self) -> Statement | None:
        label = self._t("Solution", "Outcome")
        outcome = self.j.solution
        if outcome and self.lang == "en" and outcome.lower() in _SOLUTION_EN:
            outcome = f"{outcome} ({_SOLUTION_EN[outcome.lower()]})"
        for span in self.decision.zones("dispositif"):
            text = self.decision.span_text(span)
            start = _RULING_START.search(text)
            rest = text[start.end() :] if start else text
            line = next((ln.strip() for ln in rest.splitlines() if ln.strip()), "")
            if start is None and line.upper().startswith("PAR CES MOTIFS"):
                continue
            quote, cut = condense(line.rstrip(" ;"), 400)
            if not quote:
                continue
            head = f"{label} : {outcome}. " if outcome else ""
            if self.lang == "en" and outcome:
                head = f"{label}: {outcome}. "
            text_ = head + self._t("Dispositif : ", "Ruling: ") + _quoted(quote, cut)
            return await check_statement(self.decision, text_, quotes=[quote])
        return None

    async def _visas(self) -> list[Statement]:
        found: list[Statement] = []
        seen: set[str] = set()
        for span in self.decision.zones("motivations"):
            for m in _VISA_LINE.finditer(self.decision.span_text(span)):
                quote = m.group().strip().rstrip(" ;:")
                if quote in seen:
                    continue
                seen.add(quote)
                found.append(
                    await check_statement(
                        self.decision, f"Visa{self._t(' :', ':')} « {quote} »", quotes=[quote]
                    )
                )
        return found[:2]

    async def section(self, key: SectionKey) -> Section:
        if key in ("probleme", "portee"):
            return self.needs_model(key)
        builders = {
            "presentation": self.presentation,
            "faits": self.faits,
            "procedure": self.procedure,
            "moyens": self.moyens,
            "solution": self.solution,
        }
        return await builders[key]()

    async def build(self) -> list[Section]:
        return [await self.section(key) for key in SECTION_KEYS]
