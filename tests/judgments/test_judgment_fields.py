"""Header fields read from real decisions (dev half of the corpus), one assertion per
field, against the metadata the Court published with each decision."""

from __future__ import annotations

import pytest

from judgments.judgment_builders import Decision, decision
from legal_assistant.documents.model import Page
from legal_assistant.judgments.model import Judgment
from legal_assistant.judgments.parse import analyse

# Different chambers, solutions and layouts, all from the dev half.
CASES = (
    "ECLI_FR_CCASS_2024_C201151",  # Rejet, FS-B, 1014 dismissal then an answered branch
    "ECLI_FR_CCASS_2024_C300657",  # Cassation partielle, three grounds
    "ECLI_FR_CCASS_2024_SO01281",  # "Cassation partielle partiellement sans renvoi"
    "ECLI_FR_CCASS_2024_CO00756",  # commercial chamber, two visas
    "judilibre-19-60.222",  # an API record with CRLF line ends and a jugement attacked
)


def _read(decision_id: str) -> tuple[Decision, Judgment]:
    found = decision(decision_id)
    return found, analyse([Page(number=1, text=found.text)], paginated=False)


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[Decision, Judgment]:
    return _read(request.param)


def test_is_a_judgment_of_the_cour_de_cassation(case: tuple[Decision, Judgment]) -> None:
    _, judgment = case
    assert (judgment.is_judgment, judgment.court) == (True, "Cour de cassation")


def test_date(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    assert judgment.date == (found.meta.get("date") or found.meta["decision_date"])


def test_numbers(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    # judilibre-19-60.222's record carries a filler number its text never prints.
    printed = [n for n in found.meta["numbers"] if n in found.text]
    assert list(judgment.numbers) == printed


def test_formation(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    assert judgment.formation == found.meta["chamber"]


def test_solution(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    assert judgment.solution == found.meta["solution"]


def test_publication_as_printed(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    expected = found.meta["publication"]
    if isinstance(expected, list):  # API records give labels; the code is in the text
        assert judgment.publication is not None
        assert f"Arrêt n° {found.text.split('Arrêt n° ')[1].split()[0]} {judgment.publication}" in (
            found.text
        )
    else:
        assert judgment.publication == expected


def test_attacked_decision_date(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    assert judgment.attacked is not None
    if found.id.startswith("judilibre-19-60"):
        # The record's `contested` is filler (see the corpus README): the text names
        # the tribunal d'instance de Clermont-Ferrand, 21 June 2019.
        assert (judgment.attacked.court, judgment.attacked.date) == (
            "Tribunal d'instance de Clermont-Ferrand",
            "2019-06-21",
        )
    else:
        assert judgment.attacked.date == found.meta["contested"]["date"]


def test_dispositif_found(case: tuple[Decision, Judgment]) -> None:
    found, judgment = case
    dispositif = [z for z in judgment.zones if z.zone == "dispositif"]
    assert len(dispositif) == 1
    assert found.text.replace("\r", " ")[dispositif[0].char_start :].startswith("PAR CES MOTIFS")


def test_specific_values() -> None:
    """Values the metadata does not carry, read off the printed decision."""
    _, judgment = _read("ECLI_FR_CCASS_2024_C201151")
    assert judgment.president == "Mme MARTINEL"
    assert judgment.attacked is not None
    assert judgment.attacked.court == "Cour d'appel d'Amiens"
    assert [(p.name, p.role) for p in judgment.parties] == [
        ("M. [N] [R]", "demandeur"),
        ("la caisse primaire d'assurance maladie de l'Oise", "defendeur"),
    ]
    assert judgment.ecli is None  # not printed in the text


def test_visa_normalised() -> None:
    _, judgment = _read("ECLI_FR_CCASS_2024_CO00756")
    assert [(v.article, v.code) for v in judgment.visa] == [
        ("562", "code de procédure civile"),
        ("L. 651-2", "code de commerce"),
        ("L. 653-4", "code de commerce"),
        ("L. 653-5", "code de commerce"),
        ("L. 653-6", "code de commerce"),
        ("L. 653-8", "code de commerce"),
    ]
    assert judgment.visa[0].text == "Vu l'article 562, alinéa 2, du code de procédure civile"


@pytest.mark.parametrize("decision_id", ["judilibre-19-19.463", "judilibre-19-60.222"])
def test_zones_match_the_courts_own_offsets(decision_id: str) -> None:
    """The two API records carry the Court's zone offsets: every zone segment starts
    where the Court's does (the Court's include the whitespace before the next zone),
    the annexes pasted after the closing formula included."""
    found, judgment = _read(decision_id)
    text = found.text
    ours = [(z.zone, z.char_start) for z in judgment.zones]
    expected = []
    for zone, segments in found.meta["zones"].items():
        for segment in segments:
            start = segment["start"]
            while text[start].isspace():
                start += 1
            expected.append((zone, start))
    assert sorted(ours) == sorted(expected)
