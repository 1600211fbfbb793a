"""The extractive fiche on real decisions of the Cour de cassation (corpus, Licence
Ouverte 2.0), zoned as Judilibre zoned them: every statement cites paragraphs that exist,
every quotation is verbatim, and the checks refuse what is not."""

from __future__ import annotations

import asyncio

import pytest

from judgments.corpus_judgments import corpus_names, corpus_text, zoned_decision
from legal_assistant.documents.model import Page
from legal_assistant.judgments.checks import check_statement, quotations
from legal_assistant.judgments.decision import Decision, PageText, normalise
from legal_assistant.judgments.extractive import ExtractiveFiche
from legal_assistant.judgments.fiche import SECTION_KEYS, Brief, Section
from legal_assistant.judgments.model import Judgment
from legal_assistant.judgments.parse import analyse
from legal_assistant.judgments.quoting import condense

CASSATION = "ECLI_FR_CCASS_2024_C201162"  # visa, "Il résulte de ces textes", § 12 decisive
REJET = "ECLI_FR_CCASS_2024_C201151"


def build(name: str, lang: str = "fr") -> list[Section]:
    return asyncio.run(ExtractiveFiche(zoned_decision(name), lang).build())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [n for n in corpus_names() if n != "judilibre-19-60.222"])
def test_every_statement_cites_existing_paragraphs_and_quotes_verbatim(name: str) -> None:
    decision = zoned_decision(name)
    sections = asyncio.run(ExtractiveFiche(decision).build())
    assert [s.key for s in sections] == list(SECTION_KEYS)
    flat = normalise(corpus_text(name))
    for section in sections:
        assert section.source == "extracted"
        for st in section.statements:
            assert st.verified, (section.key, st.reason, st.text)
            assert st.paragraphs or st.anchors, st.text
            for n in st.paragraphs:
                para = decision.paragraph_text(n)
                assert para is not None
            for quote in quotations(st.text):
                assert normalise(quote) in flat
                if st.paragraphs:
                    cited = " ".join(decision.paragraph_text(n) or "" for n in st.paragraphs)
                    assert normalise(quote) in normalise(cited)
            for a in st.anchors:
                assert decision.pages[a.page][a.char_start : a.char_end].strip()


def test_a_cassation_gives_ruling_visa_rule_and_decisive_paragraph() -> None:
    sections = {s.key: s for s in build(CASSATION)}
    solution = [st.text for st in sections["solution"].statements]
    assert solution[0].startswith("Solution : Cassation. Dispositif : « CASSE ET ANNULE")
    assert solution[1].startswith("Visa : « Vu les articles 54, 55, 57 et 58")
    assert [st.paragraphs for st in sections["solution"].statements[2:]] == [(9,), (12,)]
    assert sections["faits"].statements[0].paragraphs == (1,)
    assert sections["procedure"].statements[0].paragraphs == (3,)
    attacked = sections["procedure"].statements[-1]
    assert attacked.text == (
        "Décision attaquée : « contre l'arrêt rendu le 29 avril 2022 par la cour d'appel "
        "d'Aix-en-Provence »"
    )
    assert attacked.anchors and attacked.anchors[0].zone == "introduction"
    moyen = sections["moyens"].statements[0]
    assert moyen.paragraphs == (4,)
    assert moyen.text.startswith("« La caisse fait grief à l'arrêt d'accueillir le recours")
    assert sections["presentation"].statements[0].text == (
        "Cour de cassation, Deuxième chambre civile, arrêt du 5 décembre 2024, "
        "pourvoi n° 22-18.227, F-B."
    )


def test_probleme_and_portee_say_a_model_is_needed_and_invent_nothing() -> None:
    for lang, word in (("fr", "modèle de langage"), ("en", "language model")):
        sections = {s.key: s for s in build(REJET, lang)}
        for key in ("probleme", "portee"):
            assert sections[key].statements == ()
            assert word in (sections[key].note or "")
    en = {s.key: s for s in build(REJET, "en")}
    assert en["solution"].title == "Holding"
    assert en["solution"].statements[0].text.startswith("Outcome: Rejet (appeal dismissed).")


def test_quotes_stay_french_in_an_english_fiche() -> None:
    fr = {s.key: s for s in build(REJET, "fr")}
    en = {s.key: s for s in build(REJET, "en")}
    assert quotations(fr["faits"].statements[0].text) == quotations(en["faits"].statements[0].text)


def test_checks_refuse_missing_paragraphs_fabricated_quotes_and_wrong_citations() -> None:
    decision = zoned_decision(REJET)

    async def run() -> None:
        ok = await check_statement(decision, "« Le moyen n'est, dès lors, pas fondé. »", [12])
        assert ok.verified and ok.reason is None
        missing = await check_statement(decision, "« REJETTE le pourvoi »", [99])
        assert (missing.verified, missing.reason) == (False, "paragraph_missing")
        made_up = await check_statement(decision, "« la caisse a commis une faute lourde »", [11])
        assert (made_up.verified, made_up.reason) == (False, "quote_not_verbatim")
        elsewhere = await check_statement(decision, "« Le moyen n'est, dès lors, pas fondé. »", [2])
        assert (elsewhere.verified, elsewhere.reason) == (False, "wrong_citation")
        bare = await check_statement(decision, "La Cour rejette le pourvoi.")
        assert (bare.verified, bare.reason) == (False, "uncited")
        # Words of its own (a model's) need the support check: none given, not verified.
        own = await check_statement(decision, "La Cour rejette le pourvoi.", [12], own_words=True)
        assert (own.verified, own.reason) == (False, "unsupported")

    asyncio.run(run())


def test_verbatim_ignores_line_breaks_and_apostrophe_forms() -> None:
    page = "Le professionnel de santé a saisi d’un recours\nune juridiction."
    j = Judgment(is_judgment=True)
    d = Decision(j, [PageText(1, "intro"), PageText(2, page)])
    anchor = d.find("a saisi d'un recours une juridiction")
    assert anchor is not None and anchor.page == 2
    assert page[anchor.char_start : anchor.char_end] == "a saisi d’un recours\nune juridiction"
    assert d.find("a saisi un recours") is None


def test_condense_keeps_a_verbatim_prefix_with_balanced_quotes() -> None:
    text = "Il ajoute que « à domicile » est requis, " + "et encore " * 60 + "fin."
    quote, cut = condense(text, 120)
    assert cut and text.startswith(quote) and len(quote) <= 120
    assert quote.count("«") == quote.count("»")


def test_brief_round_trips_through_its_json_shape() -> None:
    sections = tuple(build(CASSATION))
    brief = Brief("d" * 32, "fr", None, "2026-12-06T21:00:00Z", {"is_judgment": True}, sections)
    again = Brief.from_dict(brief.to_dict())
    assert again == brief
    data = brief.to_dict()
    assert set(data) >= {"document_id", "language", "model", "created_at", "judgment", "sections"}
    st = data["sections"][1]["statements"][0]
    assert set(st) >= {"text", "paragraphs", "verified"}


@pytest.mark.parametrize("name", corpus_names())
async def test_with_the_parser_every_statement_is_verified(name: str) -> None:
    """The same through the real parser (judgments.parse.analyse), as ingestion reads it."""
    text = corpus_text(name)
    judgment = analyse([Page(1, text)], False)
    decision = Decision(judgment, [PageText(1, text)])
    sections = await ExtractiveFiche(decision).build()
    for section in sections:
        for st in section.statements:
            assert st.verified, (section.key, st.reason, st.text)
            assert all(decision.paragraph(n) is not None for n in st.paragraphs)
    filled = {s.key for s in sections if s.statements}
    assert {"presentation", "solution"} <= filled
    # Numbered facts and grounds (post-2019 decisions) are always found.
    if decision.paragraphs_in("expose"):
        assert {"faits", "procedure"} <= filled, filled
    if decision.paragraphs_in("moyens"):
        assert "moyens" in filled


OLD_STYLE = """COUR DE CASSATION

Audience publique du 12 mars 2015

Rejet

Arrêt n° 312 F-D

Pourvoi n° X 13-28.181

LA COUR DE CASSATION, TROISIÈME CHAMBRE CIVILE, a rendu l'arrêt suivant :

Statuant sur le pourvoi formé par M. Jean X..., domicilié à Lyon,

contre l'arrêt rendu le 8 octobre 2013 par la cour d'appel de Lyon (1re chambre civile B), \
dans le litige l'opposant à la société Immobilière du Rhône, défenderesse à la cassation ;

Attendu, selon l'arrêt attaqué (Lyon, 8 octobre 2013), que M. X..., locataire d'un \
appartement appartenant à la société Immobilière du Rhône, a assigné celle-ci en réparation \
de désordres ;

Sur le moyen unique :

Attendu que M. X... fait grief à l'arrêt de rejeter sa demande, alors, selon le moyen, que \
le bailleur est obligé d'entretenir la chose louée en état de servir à l'usage pour lequel \
elle a été louée ;

Mais attendu qu'ayant relevé que les désordres résultaient d'un défaut d'entretien \
imputable au locataire, la cour d'appel en a exactement déduit que la demande devait être \
rejetée ;

D'où il suit que le moyen n'est pas fondé ;

PAR CES MOTIFS :

REJETTE le pourvoi ;
"""


async def test_an_old_style_decision_is_quoted_by_span() -> None:
    """Before 2019 nothing is numbered: statements cite the spans they quote."""
    judgment = analyse([Page(1, OLD_STYLE)], False)
    assert judgment.is_judgment and not judgment.paragraphs
    decision = Decision(judgment, [PageText(1, OLD_STYLE)])
    sections = {s.key: s for s in await ExtractiveFiche(decision).build()}
    for key in ("faits", "moyens", "solution"):
        statements = sections[key].statements
        assert statements, key
        for st in statements:
            assert st.verified and st.paragraphs == () and st.anchors, (key, st)
            a = st.anchors[0]
            quoted = quotations(st.text)[0]
            assert normalise(OLD_STYLE[a.char_start : a.char_end]) == normalise(quoted)
    assert sections["faits"].statements[0].anchors[0].zone == "expose"
    assert "exactement déduit" in sections["solution"].statements[-1].text
