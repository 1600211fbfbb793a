"""The generated fiche: a chat model writes each section from a small, bounded prompt.

Per section, the prompt holds only the paragraphs of the zones that section is about
(faits/procedure: `expose`; moyens: `moyens`; solution: `motivations` and the ruling;
probleme/portee: the grounds and the Court's answer), each cut to `PARAGRAPH_CHARS` and
all of them to `SOURCE_CHARS`, plus the extractive statements as grounding — a 60-page
decision is never sent whole, so a 4k-context model can write any section (the prompt
stays under ~1,500 tokens with `MAX_TOKENS` to answer).

The model's sentences are split with the claim checker's splitter ("[§ n]" markers) and
each is checked like an extracted statement (judgments/checks.py): cited paragraphs
exist, quotations verbatim and under the cited §, and its own words supported by the
cited paragraphs (claim checker: bundled embedding model + content-word overlap). A
completion that loops is cut off and none of its sentences is verified. When no sentence
of a section is verified, its extractive statements are kept after the model's, so the
section still says something checked; `probleme` and `portee` have no extractive
fallback (they say the model gave nothing usable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from legal_assistant.claims.checker import ClaimChecker
from legal_assistant.claims.statements import split_statements
from legal_assistant.errors import Language
from legal_assistant.judgments.brief import BriefEvent
from legal_assistant.judgments.chat_model import ChatModel
from legal_assistant.judgments.checks import Support, check_statement
from legal_assistant.judgments.decision import Decision
from legal_assistant.judgments.fiche import TITLES, Section, SectionKey, Statement
from legal_assistant.judgments.model import Zone
from legal_assistant.judgments.quoting import paragraph_body, units

SOURCE_CHARS = 2_400  # decision text in one prompt
PARAGRAPH_CHARS = 700  # one paragraph's share of it
GROUNDING_CHARS = 900  # the extractive statements given as grounding
MAX_TOKENS = 260  # the model's answer for one section
MAX_SENTENCES = 4

_ZONES: dict[SectionKey, tuple[Zone, ...]] = {
    "presentation": ("introduction", "motivations"),
    "faits": ("expose",),
    "procedure": ("expose",),
    "moyens": ("moyens",),
    "probleme": ("moyens", "motivations"),
    "solution": ("motivations",),
    "portee": ("motivations",),
}

_ASK: dict[Language, dict[SectionKey, str]] = {
    "fr": {
        "presentation": "Présente l'arrêt en une phrase : juridiction, formation, date, et "
        "le thème juridique du litige.",
        "faits": "Résume les faits matériels du litige (qui, quoi, quand), sans la procédure.",
        "procedure": "Résume la procédure : qui a saisi quelle juridiction, les décisions "
        "rendues, qui s'est pourvu en cassation.",
        "moyens": "Expose la thèse du demandeur au pourvoi (le moyen) et ce qu'il reproche "
        "à la décision attaquée.",
        "probleme": "Formule le problème de droit que la Cour devait trancher, sous la forme "
        "d'une seule question juridique.",
        "solution": "Énonce la solution de la Cour : le sens de la décision, le texte "
        "appliqué et la raison décisive.",
        "portee": "Dégage la portée de l'arrêt : la règle affirmée, et s'il confirme ou "
        "infléchit une jurisprudence — seulement si le texte le permet.",
    },
    "en": {
        "presentation": "Present the decision in one sentence: court, formation, date and "
        "the legal theme of the case.",
        "faits": "Summarise the material facts (who, what, when), without the procedure.",
        "procedure": "Summarise the procedural history: who brought which court, the "
        "decisions given, who appealed to the Cour de cassation.",
        "moyens": "State the appellant's argument (the ground of appeal) and what it "
        "criticises in the decision under appeal.",
        "probleme": "State the legal issue the Court had to decide, as one legal question.",
        "solution": "State the Court's holding: the outcome, the text applied and the "
        "decisive reason.",
        "portee": "State the significance of the decision: the rule it affirms, and "
        "whether it confirms or departs from case law — only if the text supports it.",
    },
}

_SYSTEM: dict[Language, str] = {
    "fr": "Tu rédiges une section d'une fiche d'arrêt pour un étudiant en droit. Écris "
    "en français, en 1 à 3 phrases courtes, uniquement à partir des paragraphes fournis. "
    "Termine chaque phrase par le numéro du paragraphe qui la justifie, entre crochets : "
    "[§ 4]. Ne mets entre « » que des mots recopiés exactement de la décision. "
    "N'invente rien.",
    "en": "You write one section of a case brief for a law student. Write in English, in "
    "1 to 3 short sentences, only from the paragraphs given. End each sentence with the "
    "number of the paragraph that supports it, in brackets: [§ 4]. Put between « » only "
    "words copied exactly from the decision (they stay in French). Invent nothing.",
}

_NOTHING: dict[Language, str] = {
    "fr": "Le modèle n'a rien produit de vérifiable pour cette section.",
    "en": "The model produced nothing verifiable for this section.",
}


def claim_support(checker: ClaimChecker) -> Support:
    """The claim checker as a `Support`: one cited paragraph backing it is enough."""

    async def support(statement: str, passages: Sequence[str]) -> bool:
        for passage in passages:
            if passage and (await checker.support(statement, passage)).supported:
                return True
        return False

    return support


def section_sources(decision: Decision, key: SectionKey) -> list[tuple[int | None, str]]:
    """The paragraphs a section's prompt shows, within the bounds (an old-style decision's
    blocks have no number: shown, but a sentence can only cite numbered paragraphs)."""
    chosen: list[tuple[int | None, str]] = []
    used = 0
    for zone in _ZONES[key]:
        for unit in units(decision, zone):
            text = " ".join(paragraph_body(unit.text).split())[:PARAGRAPH_CHARS]
            if used + len(text) > SOURCE_CHARS:
                return chosen
            chosen.append((unit.n, text))
            used += len(text)
    return chosen


def prompt(
    decision: Decision, key: SectionKey, extracted: Section, language: Language
) -> list[dict[str, str]]:
    sources = section_sources(decision, key)
    lines = [f"[§ {n}] {text}" if n is not None else f"- {text}" for n, text in sources]
    grounding: list[str] = []
    used = 0
    for st in extracted.statements:
        if used + len(st.text) > GROUNDING_CHARS:
            break
        cite = ", ".join(str(n) for n in st.paragraphs)
        grounding.append(f"- {st.text}" + (f" [§ {cite}]" if cite else ""))
        used += len(st.text)
    fr = language == "fr"
    parts = [
        ("Paragraphes de la décision :" if fr else "Paragraphs of the decision:"),
        *lines,
    ]
    if grounding:
        parts += ["", "Extraits vérifiés :" if fr else "Checked extracts:", *grounding]
    parts += ["", _ASK[language][key]]
    return [
        {"role": "system", "content": _SYSTEM[language]},
        {"role": "user", "content": "\n".join(parts)},
    ]


class ModelWriter:
    """A `SectionWriter` (judgments/brief.py) over one `ChatModel`."""

    def __init__(self, model: ChatModel, support: Support) -> None:
        self.model = model
        self.model_id = model.model_id
        self._support = support

    async def write(
        self, key: SectionKey, extracted: Section, decision: Decision, language: Language
    ) -> AsyncIterator[BriefEvent | Section]:
        async for event in self.model.open(language):
            yield event
        completion = await self.model.complete(
            prompt(decision, key, extracted, language), MAX_TOKENS
        )
        statements: list[Statement] = []
        for piece in split_statements(completion.text, "paragraph")[:MAX_SENTENCES]:
            question = key == "probleme" and piece.claim_text.endswith("?")
            if not piece.claim_text or not (piece.is_claim or question):
                continue  # a label ("Résumé :"), a transition: nothing to check or show
            checked = await check_statement(
                decision,
                piece.claim_text,
                piece.citations,
                support=self._support,
                own_words=True,
            )
            if completion.degenerate:
                checked = Statement(
                    checked.text, checked.paragraphs, False, checked.anchors, "degenerate"
                )
            statements.append(checked)
        if not statements and key not in ("probleme", "portee"):
            yield extracted  # the model said nothing usable: the section stays extracted
            return
        verified = any(s.verified for s in statements)
        note = None
        if not verified and key not in ("probleme", "portee"):
            statements.extend(extracted.statements)
        elif not statements:
            note = _NOTHING[language]
        yield Section(key, TITLES[language][key], "generated", tuple(statements), note)
