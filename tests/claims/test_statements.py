"""Answers cut into statements: offsets, citations kept with their sentence, and what is
not a claim (FR and EN)."""

from __future__ import annotations

from legal_assistant.claims.statements import cited_numbers, split_statements, strip_markers

ANSWER = (
    "Bonjour ! Voici ce que dit le dossier :\n"
    "- Le délai de préavis est de trois mois [1]. Il court à compter de la réception. [2]\n"
    "- Selon M. Dupont, l'art. 1240 s'applique [1, 3].\n"
    "## Conclusion\n"
    "Je n'ai pas trouvé de passage sur la garantie. Voulez-vous préciser ? "
    "Le bail a été signé le 1er janvier 2020 [4-5].\n"
    "Ceci n'est pas un conseil juridique."
)


def test_offsets_are_exact_and_citations_stay_with_their_sentence() -> None:
    statements = split_statements(ANSWER)
    for s in statements:
        assert ANSWER[s.start : s.end] == s.text
    assert [(s.text, s.citations) for s in statements if s.citations] == [
        ("Le délai de préavis est de trois mois [1].", (1,)),
        ("Il court à compter de la réception. [2]", (2,)),  # the marker after the full stop
        ("Selon M. Dupont, l'art. 1240 s'applique [1, 3].", (1, 3)),  # "M." and "art." go on
        ("Le bail a été signé le 1er janvier 2020 [4-5].", (4, 5)),
    ]
    assert statements[2].claim_text == "Le délai de préavis est de trois mois."


def test_what_is_not_a_claim() -> None:
    kinds = {s.text: s.is_claim for s in split_statements(ANSWER)}
    for text in (
        "Bonjour !",
        "Voici ce que dit le dossier :",
        "## Conclusion",
        "Je n'ai pas trouvé de passage sur la garantie.",
        "Voulez-vous préciser ?",
        "Ceci n'est pas un conseil juridique.",
    ):
        assert kinds[text] is False, text
    english = (
        "Hello! I could not find anything about the deposit. Here is what the file says: "
        "the lease ends in 2025. Would you like more detail? I hope this helps."
    )
    claims = [(s.text, s.is_claim) for s in split_statements(english)]
    assert claims == [
        ("Hello!", False),
        ("I could not find anything about the deposit.", False),
        ("Here is what the file says: the lease ends in 2025.", False),
        ("Would you like more detail?", False),
        ("I hope this helps.", False),
    ]
    uncited = split_statements("The lease ends in 2025. Le bail prend fin en 2025.")
    assert [s.is_claim for s in uncited] == [True, True]


def test_a_cited_sentence_is_always_a_claim() -> None:
    [s] = split_statements("Je n'ai pas trouvé d'autre délai que celui de deux mois [2].")
    assert s.is_claim and s.citations == (2,)


def test_paragraph_markers_of_the_fiche() -> None:
    text = "La Cour rejette le pourvoi (§ 12). La faute était établie [§ 4, 5]. Voir [2]."
    statements = split_statements(text, "paragraph")
    assert [s.citations for s in statements] == [(12,), (4, 5), ()]
    assert statements[0].claim_text == "La Cour rejette le pourvoi."
    assert [s.citations for s in split_statements(text)] == [(), (), (2,)]


def test_markers() -> None:
    assert cited_numbers("a [1] b [3, 1] c [2-4] d [7–7] e [1-300]") == (1, 3, 2, 4, 7)
    assert cited_numbers("(§§ 4-6) et (§ 9 et 10)", "paragraph") == (4, 5, 6, 9, 10)
    assert strip_markers("deux mois [1] , puis [2].") == "deux mois, puis."


def test_abbreviations_numbers_and_list_items() -> None:
    text = (
        "1. L'article L. 1234-9 du code du travail s'applique.\n"
        "2) Le taux est de 1.5 % par an. Mme Martin a signé.\n"
        "Il faut payer 100 euros, etc. et rien de plus."
    )
    statements = [s.text for s in split_statements(text)]
    assert statements == [
        "L'article L. 1234-9 du code du travail s'applique.",
        "Le taux est de 1.5 % par an.",
        "Mme Martin a signé.",
        "Il faut payer 100 euros, etc. et rien de plus.",
    ]


def test_empty_and_blank() -> None:
    assert split_statements("") == []
    assert split_statements("  \n\n ") == []
