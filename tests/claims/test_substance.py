"""Substance checks: numbers (digits and words, with units), article references, parties,
content words."""

from __future__ import annotations

import pytest

from legal_assistant.claims.substance import Substance, compare

ARTICLE_1240 = (
    "Article 1240\nTout fait quelconque de l'homme, qui cause à autrui un dommage, oblige "
    "celui par la faute duquel il est arrivé à le réparer."
)
NOTICE = "Le preneur doit donner congé au bailleur en respectant un préavis de trois mois."


def missing(statement: str, passage: str) -> str | None:
    return compare(Substance.of(statement), Substance.of(passage)).missing


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("trois mois", {(3.0, "month")}),
        ("un délai d'un mois", {(1.0, "month")}),
        ("dix-huit ans révolus", {(18.0, "year")}),
        ("quatre-vingt-dix jours", {(90.0, "day")}),
        ("soixante et onze", {(71.0, None)}),
        ("vingt et un ans", {(21.0, "year")}),
        ("twenty-one years", {(21.0, "year")}),
        ("1 500 euros", {(1500.0, "euro")}),
        ("1 500 €", {(1500.0, "euro")}),
        ("dix pour cent", {(10.0, "percent")}),
        ("10 %", {(10.0, "percent")}),
        ("un taux de 2,5 %", {(2.5, "percent")}),
        ("le 1er janvier 2020", {(1.0, "month:1"), (2020.0, None)}),
        ("on the first of January", {(1.0, None)}),
        ("un contrat et une clause", set()),
    ],
)
def test_numbers(text: str, numbers: set[tuple[float, str | None]]) -> None:
    assert set(Substance.of(text).numbers) == numbers


def test_changed_number_or_period_is_missing() -> None:
    assert missing("Le locataire doit respecter un préavis de trois mois.", NOTICE) is None
    assert missing("Le locataire doit respecter un préavis de 3 mois.", NOTICE) is None
    assert missing("The tenant must give three months' notice.", NOTICE) is None
    assert missing("Le locataire doit respecter un préavis de deux mois.", NOTICE) == "number"
    assert missing("Le locataire doit respecter un préavis de trois ans.", NOTICE) == "number"
    assert missing("The tenant must give two months' notice.", NOTICE) == "number"
    dated = "Le bail a été conclu le 15 mars 2019."
    assert missing("Le bail date du 15 mars 2019.", dated) is None
    assert missing("Le bail date du 15 avril 2019.", dated) == "number"
    assert missing("Le bail date du 15 mars 2018.", dated) == "number"


def test_articles_named_must_be_in_the_passage() -> None:
    statement = "Selon l'article 1240, celui qui cause un dommage par sa faute doit le réparer."
    assert missing(statement, ARTICLE_1240) is None
    assert missing(statement.replace("1240", "1241"), ARTICLE_1240) == "article"
    assert missing("Les articles 1240 et 1241 s'appliquent.", ARTICLE_1240) == "article"
    labour = "Article L1234-9 : le salarié licencié a droit à une indemnité de licenciement."
    assert missing("L'article L. 1234-9 prévoit une indemnité.", labour) is None
    assert missing("L'article L. 1234-8 prévoit une indemnité.", labour) == "article"


def test_parties_and_roles() -> None:
    assert missing("Le bailleur reçoit le congé.", NOTICE) is None
    assert missing("The landlord receives the notice.", NOTICE) is None
    assert missing("L'employeur reçoit le congé.", NOTICE) == "party"
    appeal = "M. [R] [K] a formé le pourvoi n° K 23-15.672 contre l'arrêt."
    assert missing("M. [K] a formé un pourvoi n° 23-15.672.", appeal) is None
    assert missing("M. [D] a formé un pourvoi n° 23-15.672.", appeal) == "party"
    assert missing("M. [K] a formé un pourvoi n° 23-15.673.", appeal) == "number"


def test_coverage_counts_content_words_by_stem() -> None:
    high = compare(
        Substance.of("Celui qui cause un dommage à autrui par sa faute doit le réparer."),
        Substance.of(ARTICLE_1240),
    )
    low = compare(
        Substance.of("Le mariage ne peut être contracté avant la majorité."),
        Substance.of(ARTICLE_1240),
    )
    assert high.coverage >= 0.8 and low.coverage <= 0.2
    assert compare(Substance.of("Voir aussi."), Substance.of(ARTICLE_1240)).coverage == 0.0


def test_language_and_cross_language_pairs() -> None:
    english = Substance.of("The tenant must give three months' notice to the landlord.")
    french = Substance.of(NOTICE)
    assert (english.language, french.language) == ("en", "fr")
    assert Substance.of("Article 1240").language is None  # too few words to say
    assert compare(english, french).cross_language
    assert not compare(Substance.of("Le preneur donne congé au bailleur."), french).cross_language
