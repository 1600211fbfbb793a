"""Passages follow the document's structure, with bounded size, exact offsets, the page
of a PDF and the paragraph of other formats, and a legal label when there is one.

Offsets contract: page.text[p.char_start:p.char_end] == p.text, exactly."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from documents.builders import (
    article_blocks,
    build_docx,
    build_pdf,
    corpus_article,
    corpus_articles,
)
from legal_assistant.documents.extract import extract_document
from legal_assistant.documents.model import Extracted, Page, Passage
from legal_assistant.documents.passages import MAX_CHARS, legal_label, split_passages


def _check_offsets(extracted: Extracted, passages: list[Passage]) -> None:
    pages = {p.number: p for p in extracted.pages}
    for ordinal, passage in enumerate(passages):
        assert passage.ordinal == ordinal
        text = pages[passage.page].text
        assert text[passage.char_start : passage.char_end] == passage.text
        assert passage.text == passage.text.strip() and passage.text


async def test_pdf_articles_are_cited_to_their_exact_page(tmp_path: Path) -> None:
    articles = corpus_articles(30, max_chars=450)
    pages = [article_blocks(articles[i : i + 3]) for i in range(0, 30, 3)]  # 10 pages
    path = build_pdf(tmp_path / "code.pdf", pages)
    extracted = await extract_document(path, "code.pdf")

    passages = split_passages(extracted)

    _check_offsets(extracted, passages)
    by_label = {p.label: p for p in passages}
    for index, article in enumerate(articles):
        passage = by_label[article.heading]
        assert passage.page == index // 3 + 1, article.heading
        assert passage.paragraph is None
        first_words = " ".join(article.text.split()[:6])
        assert first_words in " ".join(passage.text.split())
    assert all(len(p.text) <= MAX_CHARS for p in passages)


async def test_docx_passages_carry_paragraph_numbers(tmp_path: Path) -> None:
    blocks = [
        "# Conclusions en défense",
        "Article 1240",
        corpus_article("1240").text,
        "Article 1382",
        corpus_article("1382").text,
        "# Discussion",
        "Le demandeur ne rapporte pas la preuve d'une faute au sens de l'article 1382.",
    ]
    path = build_docx(tmp_path / "c.docx", blocks)
    extracted = await extract_document(path, "c.docx")
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    found = {(p.label, p.paragraph) for p in passages}
    # The heading "Conclusions en défense" has no text of its own: it starts article 1240.
    assert ("Article 1240", 1) in found
    assert ("Article 1382", 4) in found
    assert ("Discussion", 6) in found
    assert all(p.page == 1 for p in passages)


def test_labels() -> None:
    assert legal_label("Article L121-21") == "Article L121-21"
    assert legal_label("Art. L. 121-21 : Le consommateur dispose") == "Article L121-21"
    assert legal_label("Art. 1240") == "Article 1240"
    assert legal_label("ARTICLE 5 - Durée") == "Article 5"
    assert legal_label("Article premier") == "Article 1er"
    assert legal_label("Article 515-14 bis") == "Article 515-14 bis"
    assert legal_label("# Article 1382") == "Article 1382"
    assert legal_label("Article L3211-12-A") == "Article L3211-12-A"
    assert legal_label("Article 5 A défaut d'accord, le juge statue.") == "Article 5"
    assert legal_label("§ 12 La cour relève") == "§ 12"
    assert legal_label("12. Selon l'arrêt attaqué, M. X a assigné") == "§ 12"
    assert legal_label("Attendu que la cour d'appel a retenu") == "Attendu que"
    assert legal_label("Mais attendu qu'ayant relevé") == "Attendu que"
    assert legal_label("Considérant que le requérant soutient") == "Considérant que"
    assert legal_label("TITRE III : DES OBLIGATIONS") == "TITRE III : DES OBLIGATIONS"
    assert legal_label("Chapitre II") == "Chapitre II"
    assert legal_label("PAR CES MOTIFS") == "PAR CES MOTIFS"
    assert legal_label("## Exposé des faits") == "Exposé des faits"
    # Citing an article in a sentence does not start one; nor does ordinary prose.
    assert legal_label("Article 1240 du code civil dispose que") is None
    assert legal_label("Le juge a retenu que la faute était établie.") is None
    assert legal_label("2014. la cour") is None


def _judgment() -> str:
    return "\n".join(
        [
            "COUR DE CASSATION",
            "Faits et procédure",
            "1. Selon l'arrêt attaqué (Paris, 3 mai 2021), M. X a confié des travaux à la "
            "société Y.",
            "2. La société Y a assigné M. X en paiement du solde.",
            "Examen du moyen",
            "Attendu que M. X fait grief à l'arrêt de le condamner ;",
            "Mais attendu que la cour d'appel a souverainement retenu que les travaux étaient "
            "achevés ;",
            "PAR CES MOTIFS, la Cour :",
            "REJETTE le pourvoi.",
        ]
    )


def test_judgment_structure_on_a_pdf_page() -> None:
    extracted = Extracted(format="pdf", pages=[Page(1, _judgment())], paginated=True)
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    labels = [p.label for p in passages]
    assert labels == ["§ 1", "§ 2", "Attendu que", "Attendu que", "PAR CES MOTIFS, la Cour :"]
    assert passages[0].text.startswith("COUR DE CASSATION")  # headings join what follows
    assert passages[0].char_start == 0


def test_long_unit_is_cut_at_sentence_ends_and_keeps_its_label() -> None:
    sentences = [
        f"Le cocontractant numéro {i} doit exécuter l'obligation de bonne foi." for i in range(80)
    ]
    text = "Article 1104\n" + " ".join(sentences)
    extracted = Extracted(format="pdf", pages=[Page(1, text)], paginated=True)
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    assert len(passages) >= 3
    assert {p.label for p in passages} == {"Article 1104"}
    assert all(len(p.text) <= MAX_CHARS for p in passages)
    assert all(p.text.endswith(".") for p in passages)
    sizes = [len(p.text) for p in passages]
    assert min(sizes) > max(sizes) / 2  # even shares, not a big piece and a crumb


def test_abbreviations_are_not_sentence_ends() -> None:
    sentence = "Vu l'art. 12 et l'avis de M. Dupont, le juge statue."
    text = "Article 7\n" + " ".join([sentence] * 60)
    extracted = Extracted(format="pdf", pages=[Page(1, text)], paginated=True)
    for passage in split_passages(extracted):
        assert not passage.text.endswith(("art.", "M."))


def test_tiny_unlabelled_scraps_join_a_neighbour() -> None:
    text = "Code civil - page 4\nArticle 9\nChacun a droit au respect de sa vie privée.\n- 4 -"
    extracted = Extracted(format="pdf", pages=[Page(1, text)], paginated=True)
    passages = split_passages(extracted)
    assert len(passages) == 1
    assert passages[0].label == "Article 9"
    assert passages[0].text == text


def test_text_continuing_on_the_next_page_keeps_the_label() -> None:
    pages = [
        Page(1, "Article 1231-1\nLe débiteur est condamné, s'il y a lieu, au paiement de"),
        Page(2, "dommages et intérêts, à moins qu'il ne justifie de la force majeure.\n"
                "Article 1231-2\nLes dommages et intérêts dus au créancier sont, en général..."),
        Page(3, ""),
    ]  # fmt: skip
    extracted = Extracted(format="pdf", pages=pages, paginated=True)
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    assert [(p.page, p.label) for p in passages] == [
        (1, "Article 1231-1"),
        (2, "Article 1231-1"),
        (2, "Article 1231-2"),
    ]


def test_unstructured_text_is_packed_by_paragraphs() -> None:
    paragraphs = [
        f"Paragraphe {i} : " + "le bailleur doit délivrer la chose louée. " * 6 for i in range(20)
    ]
    extracted = Extracted(format="txt", pages=[Page(1, "\n\n".join(paragraphs))], paginated=False)
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    assert 2 <= len(passages) < 20
    assert all(p.label is None for p in passages)
    for passage in passages:  # cuts fall between paragraphs
        assert passage.text.startswith("Paragraphe")
        assert re.match(r"Paragraphe (\d+)", passage.text)
        number = int(re.match(r"Paragraphe (\d+)", passage.text).group(1))  # type: ignore[union-attr]
        assert passage.paragraph == number + 1


def test_empty_and_whitespace_pages_give_no_passages() -> None:
    extracted = Extracted(
        format="pdf", pages=[Page(1, ""), Page(2, "  \n "), Page(3, "Fin.")], paginated=True
    )
    assert [(p.page, p.text) for p in split_passages(extracted)] == [(3, "Fin.")]


_pieces = st.sampled_from(
    ["Article 12", "Art. L. 121-21", "§ 3", "14. Selon", "Attendu que", "TITRE II", "", " ",
     "le juge.", "une phrase assez longue pour compter, sans fin", "M. X", "a" * 300, "\n"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(_pieces, max_size=40).map(lambda xs: "\n".join(xs)), max_size=4),
    st.booleans(),
)
def test_any_text_offsets_exact_sizes_bounded_nothing_lost(
    texts: list[str], paginated: bool
) -> None:
    pages = [Page(i + 1, t) for i, t in enumerate(texts)]
    extracted = Extracted(format="pdf" if paginated else "txt", pages=pages, paginated=paginated)
    passages = split_passages(extracted, max_chars=400, min_chars=50)
    _check_offsets(extracted, passages)
    assert all(len(p.text) <= 400 for p in passages)
    for page in pages:  # every visible character is in exactly one passage
        covered = [0] * len(page.text)
        for p in passages:
            if p.page == page.number:
                for i in range(p.char_start, p.char_end):
                    covered[i] += 1
        for i, ch in enumerate(page.text):
            assert covered[i] <= 1
            if not ch.isspace():
                assert covered[i] == 1, (page.text, i)


def test_numbered_items_inside_an_article_stay_in_it() -> None:
    article = corpus_article("1367")  # "... 1. Que la demande ... 2. Qu'elle ne soit pas ..."
    assert "\n1. " in "\n" + article.text or "\n\n1. " in article.text
    text = f"Article 1367\n\n{article.text}"
    extracted = Extracted(format="txt", pages=[Page(1, text)], paginated=False)
    assert {p.label for p in split_passages(extracted)} == {"Article 1367"}
    judgment = "Attendu que le moyen est recevable ;\n3. Selon l'arrêt, la vente est parfaite."
    extracted = Extracted(format="pdf", pages=[Page(1, judgment)], paginated=True)
    assert [p.label for p in split_passages(extracted)] == ["Attendu que", "§ 3"]


async def test_corpus_sample_one_article_per_page_keeps_its_label(tmp_path: Path) -> None:
    # Every 10th article of the corpus (real enumerations, "I. -" sections, quotes...):
    # each page's passages all carry that page's article label, and only it.
    articles = corpus_articles(1500, max_chars=2400)[::10]
    path = build_pdf(tmp_path / "sample.pdf", [article_blocks([a]) for a in articles])
    extracted = await extract_document(path, "sample.pdf")
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    for number, article in enumerate(articles, start=1):
        assert {p.label for p in passages if p.page == number} == {article.heading}


CASSATION = """Arrêt n° 123 F-D
Pourvoi n° 21-12.345
R É P U B L I Q U E F R A N Ç A I S E
AU NOM DU PEUPLE FRANÇAIS
ARRÊT DE LA COUR DE CASSATION, TROISIÈME CHAMBRE CIVILE, DU 12 JANVIER 2023
Faits et procédure
1. Selon l'arrêt attaqué (Paris, 3 mai 2021), M. X a confié à la société Y des travaux
de rénovation de sa maison.
Examen du moyen
Enoncé du moyen
2. M. X fait grief à l'arrêt de rejeter sa demande, alors « que tout fait quelconque de
l'homme oblige celui par la faute duquel il est arrivé à le réparer ».
Réponse de la Cour
Vu l'article 1240 du code civil :
3. Aux termes de ce texte, tout fait quelconque de l'homme, qui cause à autrui un
dommage, oblige celui par la faute duquel il est arrivé à le réparer.
Sur le second moyen, pris en sa première branche
4. La cour d'appel a retenu que la société Y n'avait commis aucune faute.
PAR CES MOTIFS, la Cour :
CASSE ET ANNULE, en toutes ses dispositions, l'arrêt rendu le 3 mai 2021."""


def test_cassation_judgment_layout() -> None:
    extracted = Extracted(format="pdf", pages=[Page(1, CASSATION)], paginated=True)
    passages = split_passages(extracted)
    _check_offsets(extracted, passages)
    assert [p.label for p in passages] == ["§ 1", "§ 2", "§ 3", "§ 4", "PAR CES MOTIFS, la Cour :"]
    # Section headings and the visa open the numbered paragraph they introduce.
    assert passages[1].text.startswith("Examen du moyen\nEnoncé du moyen\n2. M. X")
    assert passages[2].text.startswith("Réponse de la Cour\nVu l'article 1240 du code civil :\n3.")
    assert passages[3].text.startswith("Sur le second moyen")
