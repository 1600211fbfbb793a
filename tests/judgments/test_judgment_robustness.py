"""Odd input: a damaged header, a contract, a 300-page decision, random damage."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from judgments.judgment_builders import decision, long_decision_pages
from legal_assistant.documents.model import Page
from legal_assistant.judgments.parse import analyse

DECISION = "ECLI_FR_CCASS_2024_C201151"  # dev half


def test_damaged_header_gives_nulls_and_the_rest() -> None:
    """The first lines (court, date, solution, president, n°) lost to a bad scan: those
    fields are None, never guessed; the body is still read."""
    text = decision(DECISION).text
    cut = text.index("M. [N] [R], domicilié")
    damaged = "#@! ~~ ¤¤ illisible ¤¤\n\n" + text[cut:]
    judgment = analyse([Page(number=1, text=damaged)], paginated=False)
    assert judgment.is_judgment
    assert judgment.date is None
    assert judgment.president is None
    assert judgment.publication is None
    assert judgment.court is None
    # Read from what remains: the introduction, the ruling and the closing formula.
    assert judgment.numbers == ("22-22.395",)
    assert judgment.solution == "Rejet"  # from "REJETTE le pourvoi"
    assert judgment.formation == "Deuxième chambre civile"
    assert judgment.attacked is not None and judgment.attacked.date == "2022-04-25"
    assert [p.n for p in judgment.paragraphs] == list(range(1, 13))
    assert {z.zone for z in judgment.zones} == {
        "introduction", "expose", "moyens", "motivations", "dispositif"
    }  # fmt: skip


def test_contract_is_not_a_judgment() -> None:
    contract = (
        "CONTRAT DE BAIL D'HABITATION\n\nEntre les soussignés : M. Dupont, bailleur, "
        "et Mme Martin, preneur.\n\nArticle 1 - Objet\n\nLe bailleur donne à bail le "
        "logement situé 3 rue des Lilas.\n\nArticle 2 - Durée\n\nLe bail est conclu pour "
        "trois ans. En cas de litige, la cour d'appel de Paris sera compétente.\n\n"
        "Fait à Paris, le 5 décembre 2024, en deux exemplaires."
    )
    assert not analyse([Page(number=1, text=contract)], paginated=False).is_judgment


def test_300_page_decision_with_annexes() -> None:
    pages = long_decision_pages(decision(DECISION).text, 300)
    assert len(pages) == 300
    judgment = analyse(pages, paginated=True)
    zones = [z.zone for z in judgment.zones]
    assert zones.count("dispositif") >= 1 and zones[-1] == "annexes"
    annex_pages = {z.page for z in judgment.zones if z.zone == "annexes"}
    assert len(annex_pages) > 290  # one entry per page the annexes span
    # The annexes repeat the grounds, whose numbers are not the decision's paragraphs.
    assert [p.n for p in judgment.paragraphs] == list(range(1, 13))
    for zone in judgment.zones:
        page_text = pages[zone.page - 1].text
        assert page_text[zone.char_start : zone.char_end] == (
            page_text[zone.char_start : zone.char_end].strip()
        )


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    cuts=st.lists(st.integers(min_value=0, max_value=7700), min_size=0, max_size=8),
)
def test_damaged_text_never_raises(data: st.DataObject, cuts: list[int]) -> None:
    text = decision(DECISION).text
    for at in sorted(cuts, reverse=True):
        noise = data.draw(st.text(max_size=30))
        text = text[:at] + noise + text[at + data.draw(st.integers(0, 200)) :]
    split = data.draw(st.integers(0, len(text)))
    pages = [Page(number=1, text=text[:split]), Page(number=2, text=text[split:])]
    judgment = analyse(pages, paginated=True)
    for span in (*judgment.paragraphs, *judgment.zones):
        piece = pages[span.page - 1].text[span.char_start : span.char_end]
        assert piece and piece == piece.strip()
    assert judgment.to_dict()["is_judgment"] in (True, False)
