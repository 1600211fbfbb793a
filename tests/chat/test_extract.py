"""The extractive answer (chat/extract.py): which passages, which part of a long one, how
each is introduced — pure functions, on real Code civil text."""

from __future__ import annotations

from legal_assistant.chat.extract import INTRO, extractive_answer, quote

# Article 1719 of the Code civil (the lessor's obligations), real text.
ART_1719 = (
    "Le bailleur est obligé, par la nature du contrat, et sans qu'il soit besoin d'aucune "
    "stipulation particulière : 1° De délivrer au preneur la chose louée et, s'il s'agit de "
    "son habitation principale, un logement décent. 2° D'entretenir cette chose en état de "
    "servir à l'usage pour lequel elle a été louée ; 3° D'en faire jouir paisiblement le "
    "preneur pendant la durée du bail ; 4° D'assurer également la permanence et la qualité "
    "des plantations."
)


def source(n: int, text: str, **extra: object) -> dict[str, object]:
    return {"n": n, "filename": "bail.pdf", "page": n, "paragraph": None, "label": None,
            "text": text, **extra}  # fmt: skip


def test_a_short_passage_is_quoted_whole_and_a_long_one_where_it_answers() -> None:
    assert quote("Un   texte\ncourt.", "question") == "Un texte court."
    long = ART_1719 + " " + "Autre disposition sans rapport avec la question posée. " * 12
    shown = quote(long, "Faut-il entretenir la chose en état de servir ?", max_chars=200)
    assert len(shown) <= 204 and "entretenir" in shown.lower(), shown
    assert shown.endswith(" …")
    late = "Une phrase d'introduction. " * 20 + "Les plantations doivent être assurées."
    picked = quote(late, "Qui assure les plantations ?", max_chars=120)
    assert picked.startswith("… ") and "plantations" in picked


def test_the_best_passages_are_quoted_with_where_they_are() -> None:
    sources = [
        source(1, ART_1719, label="Article 1719"),
        source(2, "Le preneur est tenu de payer le prix du bail.", paragraph=4),
        source(3, "Troisième passage."),
        source(4, "Quatrième passage."),
    ]
    fr = extractive_answer(sources, "Que doit le bailleur ?", "fr")
    assert fr is not None and fr["sources"] == [1, 2, 3]
    assert fr["text"].startswith(INTRO["fr"])
    assert "**bail.pdf, p. 1, Article 1719** [1]\n> « Le bailleur est obligé" in fr["text"]
    assert "**bail.pdf, § 4** [2]" in fr["text"] and "Quatrième" not in fr["text"]
    en = extractive_answer(sources[:1], "What must the lessor do?", "en")
    assert en is not None and en["text"].startswith(INTRO["en"]) and "“Le bailleur" in en["text"]
    assert extractive_answer([], "?", "fr") is None
