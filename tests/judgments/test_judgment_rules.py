"""The rules one by one, on the forms the genre prints. The corpus holds only decisions of
the Cour de cassation: the other courts' headers below are constructed from the way
those courts print them (no real text of theirs is here), so they test the rules, not
the rules' coverage of those courts."""

from __future__ import annotations

import pytest

from legal_assistant.documents.model import Page
from legal_assistant.judgments import court, header
from legal_assistant.judgments.dates import first_date
from legal_assistant.judgments.detect import is_judgment
from legal_assistant.judgments.parse import analyse
from legal_assistant.judgments.visa import parse_visa


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Audience publique du 1er mars 2023", "2023-03-01"),
        ("10 DÉCEMBRE 2024", "2024-12-10"),
        ("le 5 déc. 2024", "2024-12-05"),
        ("le 3 fevrier 2021", "2021-02-03"),
        ("le 31 février 2021", None),  # not a date
        ("le 12 brumaire an II", None),
    ],
)
def test_dates(text: str, iso: str | None) -> None:
    assert first_date(text) == iso


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Vu l'article 1240 du code civil :", [("1240", "code civil")]),
        (
            "Vu les articles L. 1234-1 et L. 1234-9 du code du travail :",
            [("L. 1234-1", "code du travail"), ("L. 1234-9", "code du travail")],
        ),
        (
            "Vu les articles L. 1110-4 du code de la santé publique, L. 315-1, V, L. 461-1 "
            "et R. 441-14 du code de la sécurité sociale :",
            [
                ("L. 1110-4", "code de la santé publique"),
                ("L. 315-1", "code de la sécurité sociale"),
                ("L. 461-1", "code de la sécurité sociale"),
                ("R. 441-14", "code de la sécurité sociale"),
            ],
        ),
        ("Vu l'article L. 2411-1, 2°, du code du travail :", [("L. 2411-1", "code du travail")]),
        (
            "Vu les articles L. 2422-1, dans sa rédaction antérieure à l'ordonnance "
            "n° 2017-1386 du 22 septembre 2017, et L. 2422-4 du code du travail :",
            [("L. 2422-1", "code du travail"), ("L. 2422-4", "code du travail")],
        ),
        (
            "Vu l'article premier de la loi du 1er juillet 1901 relative au contrat "
            "d'association et le principe du respect des droits de la défense :",
            [("1er", "loi du 1er juillet 1901 relative au contrat d'association")],
        ),
        ("Vu le principe de la réparation intégrale :", []),
    ],
)
def test_visa(line: str, expected: list[tuple[str, str | None]]) -> None:
    assert [(v.article, v.code) for v in parse_visa(line)] == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("COUR DE CASSATION\n\nAudience publique du 5 décembre 2024", "Cour de cassation"),
        ("CONSEIL D'ETAT\n\nstatuant au contentieux", "Conseil d'État"),
        (
            "COUR ADMINISTRATIVE D'APPEL DE LYON\n\nN° 21LY01234",
            "Cour administrative d'appel de Lyon",
        ),
        ("TRIBUNAL ADMINISTRATIF DE PARIS", "Tribunal administratif de Paris"),
        ("COUR D'APPEL D'AIX-EN-PROVENCE\n\nChambre 1-8", "Cour d'appel d'Aix-en-Provence"),
        ("TRIBUNAL JUDICIAIRE DE LYON", "Tribunal judiciaire de Lyon"),
        ("La cour d'appel de Paris a jugé que le contrat était nul et que", None),
    ],
)
def test_court_from_header_lines(head: str, expected: str | None) -> None:
    assert court.court(head) == expected


@pytest.mark.parametrize(
    ("ruling", "solution"),
    [
        ("PAR CES MOTIFS, la Cour :\n\nREJETTE le pourvoi ;", "Rejet"),
        (
            "PAR CES MOTIFS, la Cour :\n\nCASSE ET ANNULE, en toutes ses dispositions, l'arrêt",
            "Cassation",
        ),
        ("CASSE ET ANNULE, mais seulement en ce qu'il rejette la demande", "Cassation partielle"),
        (
            "CASSE ET ANNULE, mais seulement en ce qu'il …\n\nDIT n'y avoir lieu à renvoi ;",
            "Cassation partielle sans renvoi",
        ),
        ("DÉCLARE IRRECEVABLE le pourvoi ;", "Irrecevabilité"),
        (
            "DIT N'Y AVOIR LIEU DE RENVOYER au Conseil constitutionnel la question",
            "Non-lieu à renvoi",
        ),
        ("Le président ordonne la suite de la procédure.", None),
    ],
)
def test_solution_from_the_ruling_when_the_header_has_none(
    ruling: str, solution: str | None
) -> None:
    assert header.solution("", ruling) == solution


@pytest.mark.parametrize("code", ["F-D", "F-B", "FS-B", "FS-B+R", "F-B + R", "FS-P+B+I"])
def test_publication_as_printed(code: str) -> None:
    assert header.publication(f"Arrêt n° 1151 {code}\n\nPourvoi n° X 22-22.395") == code


def test_hearing_date_is_not_the_decision_date() -> None:
    head = "après débats en l'audience publique du 23 octobre 2024 où étaient présents"
    assert header.decision_date(head) is None


def test_administrative_decision_recognised() -> None:
    text = (
        "CONSEIL D'ETAT\n\nstatuant au contentieux\n\nN° 452345\n\nREPUBLIQUE FRANCAISE\n\n"
        "AU NOM DU PEUPLE FRANCAIS\n\nLecture du 12 mars 2024\n\n"
        "Vu la procédure suivante :\n\nM. A... a demandé au tribunal administratif de Paris "
        "d'annuler la décision.\n\nConsidérant ce qui suit :\n\n1. Aux termes de l'article "
        "L. 521-1 du code de justice administrative, le juge peut suspendre la décision.\n\n"
        "2. La requête n'est pas fondée.\n\nD E C I D E :\n\nArticle 1er : La requête de "
        "M. A... est rejetée.\n"
    )
    assert is_judgment(text)
    judgment = analyse([Page(number=1, text=text)], paginated=False)
    assert (judgment.court, judgment.date, judgment.numbers) == (
        "Conseil d'État",
        "2024-03-12",
        ("452345",),
    )
    assert [z.zone for z in judgment.zones] == [
        "introduction", "expose", "motivations", "dispositif"
    ]  # fmt: skip
    assert [(p.n, p.zone) for p in judgment.paragraphs] == [(1, "motivations"), (2, "motivations")]


@pytest.mark.parametrize(
    ("intro", "court_name", "date"),
    [
        (
            "a formé le pourvoi n° A 21-12.345 contre l'arrêt rendu le 5 mai 2022, sur renvoi "
            "après cassation (2e Civ., 3 mars 2021, pourvoi n° 19-14.000), par la cour d'appel "
            "de Lyon (1re chambre civile), dans le litige l'opposant",
            "Cour d'appel de Lyon",
            "2022-05-05",
        ),
        (
            "a formé un pourvoi contre l'arrêt n° 123 de la cour d'assises du Rhône, en date "
            "du 12 avril 2024, qui, pour meurtre, l'a condamné",
            "Cour d'assises du Rhône",
            "2024-04-12",
        ),
        (
            "a formé le pourvoi contre l'ordonnance rendue le 1er février 2023 par le premier "
            "président de la cour d'appel de Paris, dans le litige",
            "Premier président de la cour d'appel de Paris",
            "2023-02-01",
        ),
        ("a formé le pourvoi, dans le litige l'opposant à la société X", None, None),
    ],
)
def test_attacked_decision(intro: str, court_name: str | None, date: str | None) -> None:
    found = header.attacked(intro)
    read = (found.court, found.date) if found is not None else (None, None)
    assert read == (court_name, date)


def test_old_style_decision_zones_from_its_attendus() -> None:
    """A pre-2019 layout (constructed on the classic model: no numbered paragraphs,
    "Attendu, selon l'arrêt attaqué…", "Sur le moyen unique :", "Mais attendu que…")."""
    text = (
        "CIV. 1\n\nCOUR DE CASSATION\n\nAudience publique du 12 janvier 2017\n\nRejet\n\n"
        "Mme BATUT, président\n\nArrêt n° 45 F-D\n\nPourvoi n° K 15-28.123\n\n"
        "AU NOM DU PEUPLE FRANÇAIS\n\nLA COUR DE CASSATION, PREMIÈRE CHAMBRE CIVILE, a rendu "
        "l'arrêt suivant :\n\nStatuant sur le pourvoi formé par M. Jean X..., domicilié [...], "
        "contre l'arrêt rendu le 3 novembre 2015 par la cour d'appel de Paris (pôle 2, "
        "chambre 1), dans le litige l'opposant à la société Y..., défenderesse à la "
        "cassation ;\n\n"
        "Attendu, selon l'arrêt attaqué (Paris, 3 novembre 2015), que M. X... a assigné la "
        "société Y... en réparation de son préjudice ;\n\n"
        "Sur le moyen unique :\n\n"
        "Attendu que M. X... fait grief à l'arrêt de rejeter sa demande, alors, selon le "
        "moyen, que tout fait quelconque de l'homme oblige à réparer le dommage ;\n\n"
        "Mais attendu que la cour d'appel a souverainement estimé que le préjudice "
        "n'était pas établi ; que le moyen n'est pas fondé ;\n\n"
        "PAR CES MOTIFS :\n\nREJETTE le pourvoi ;\n\nCondamne M. X... aux dépens ;"
    )
    judgment = analyse([Page(number=1, text=text)], paginated=False)
    assert [(z.zone, z.title) for z in judgment.zones] == [
        ("introduction", None),
        ("expose", None),
        ("moyens", "Sur le moyen unique :"),
        ("motivations", None),
        ("dispositif", "PAR CES MOTIFS"),
    ]
    assert judgment.paragraphs == ()
    assert (judgment.date, judgment.solution, judgment.formation) == (
        "2017-01-12",
        "Rejet",
        "Première chambre civile",
    )
    assert [(p.name, p.role) for p in judgment.parties] == [
        ("M. Jean X...", "demandeur"),
        ("la société Y...", "defendeur"),
    ]
    assert judgment.attacked is not None
    assert (judgment.attacked.court, judgment.attacked.date) == (
        "Cour d'appel de Paris",
        "2015-11-03",
    )


@pytest.mark.parametrize(
    ("head", "intro", "expected"),
    [
        ("Pourvoi n° X 22-22.395", "", ("22-22.395",)),
        ("Pourvois n°\nE 22-12.345\nF 22-12.346 JONCTION", "", ("22-12.345", "22-12.346")),
        ("N° P 24-83.069 F-B", "", ("24-83.069",)),
        # Header lost: the pourvoi the introduction says was lodged; not one it quotes.
        (
            "",
            "M. X a formé le pourvoi n° H 23-19.510 contre l'arrêt …\n\n3. Par arrêt du 20 mars "
            "2024 (Crim., 20 mars 2024, pourvoi n° 23-85.065), la Cour a cassé",
            ("23-19.510",),
        ),
        ("COUR D'APPEL DE PARIS\n\nN° RG 21/03214 - N° Portalis 35L7-V-B7F", "", ("21/03214",)),
    ],
)
def test_numbers(head: str, intro: str, expected: tuple[str, ...]) -> None:
    assert header.numbers(head, intro) == expected
