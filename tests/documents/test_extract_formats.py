"""Extraction of every supported format, through the real worker process: planted text
comes back on the exact page (PDF) or in document order (one page for the others)."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents.builders import (
    SCRIPT_TEXT,
    STYLE_TEXT,
    article_blocks,
    build_docx,
    build_html,
    build_markdown,
    build_odt,
    build_pdf,
    build_rtf,
    build_txt,
    corpus_article,
    corpus_articles,
)
from legal_assistant.documents.extract import extract_document
from legal_assistant.documents.model import Extracted

PLANTED = "La clause de médiation préalable stipulée à l'article 14 est impérative."


def _pdf_pages(count: int) -> list[list[str]]:
    articles = corpus_articles(count * 2, max_chars=500)
    return [article_blocks(articles[2 * i : 2 * i + 2]) for i in range(count)]


async def test_pdf_text_layer_keeps_each_page_and_reports_progress(tmp_path: Path) -> None:
    pages = _pdf_pages(12)
    pages[6] = [*pages[6], PLANTED]  # page 7
    path = build_pdf(tmp_path / "code.pdf", pages, title="Code civil (extraits)")
    seen: list[tuple[int, int]] = []

    extracted = await extract_document(path, "code.pdf", progress=lambda d, t: seen.append((d, t)))

    assert extracted.format == "pdf" and extracted.paginated
    assert extracted.title == "Code civil (extraits)"
    assert [p.number for p in extracted.pages] == list(range(1, 13))
    assert all(p.source == "text" and p.note is None for p in extracted.pages)
    holding = [p.number for p in extracted.pages if PLANTED in " ".join(p.text.split())]
    assert holding == [7]
    for number, blocks in enumerate(pages, start=1):  # each heading on its own page
        assert blocks[0] in extracted.pages[number - 1].text
    assert seen == [(n, 12) for n in range(13)]


async def test_pdf_accents_and_typographic_quotes_survive(tmp_path: Path) -> None:
    text = "L’époux « de bonne foi » peut demander des dommages-intérêts ; œuvre, cœur."
    path = build_pdf(tmp_path / "q.pdf", [["Article 266", text]])
    extracted = await extract_document(path, "q.pdf")
    assert text in " ".join(extracted.pages[0].text.split())


async def test_pdf_blank_page_is_kept_and_flagged_blank(tmp_path: Path) -> None:
    path = build_pdf(tmp_path / "b.pdf", [["Article 1", "Texte."], [], ["Article 2", "Suite."]])
    extracted = await extract_document(path, "b.pdf")
    assert [p.number for p in extracted.pages] == [1, 2, 3]
    blank = extracted.pages[1]
    assert (blank.text, blank.source, blank.note) == ("", "text", "blank page")


def _paragraphs(extracted: Extracted) -> list[str]:
    assert len(extracted.pages) == 1 and not extracted.paginated
    page = extracted.pages[0]
    assert page.number == 1 and page.source == "text"
    return page.text.split("\n\n")


BLOCKS_ARTICLES = ("1240", "1382", "544")


def _blocks() -> list[str]:
    articles = [corpus_article(n) for n in BLOCKS_ARTICLES]
    return ["# Titre premier : des obligations", *article_blocks(articles), PLANTED]


@pytest.mark.parametrize(
    ("name", "builder"),
    [
        ("contrat.docx", build_docx),
        ("contrat.odt", build_odt),
        ("contrat.rtf", build_rtf),
        ("contrat.html", build_html),
        ("contrat.md", build_markdown),
        ("contrat.txt", build_txt),
    ],
)
async def test_non_pdf_formats_give_one_page_of_paragraphs_in_order(
    tmp_path: Path, name: str, builder: object
) -> None:
    blocks = _blocks()
    path = builder(tmp_path / name, blocks)  # type: ignore[operator]
    seen: list[tuple[int, int]] = []
    extracted = await extract_document(path, name, progress=lambda d, t: seen.append((d, t)))

    assert extracted.format == name.rsplit(".", 1)[1]
    paragraphs = _paragraphs(extracted)
    expected = [b.removeprefix("# ") for b in blocks]
    if name.endswith(".md"):  # Markdown is kept as written
        expected[0] = blocks[0]
    assert paragraphs == expected
    assert seen == [(0, 1), (1, 1)]


async def test_html_drops_scripts_and_styles_and_reads_its_title(tmp_path: Path) -> None:
    path = build_html(tmp_path / "page.html", _blocks())
    extracted = await extract_document(path, "page.html")
    text = extracted.pages[0].text
    assert SCRIPT_TEXT not in text and STYLE_TEXT not in text
    assert extracted.title == "Dossier"


async def test_html_block_structure_becomes_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "nested.html"
    path.write_text(
        "<html><body><div>Intro <b>gras</b> et <i>italique</i>"
        "<ul><li>Premier point</li><li>Second point</li></ul>fin de div</div>"
        "<table><tr><td>Partie</td><td>Montant</td></tr></table>"
        "<!-- commentaire --><p>Dernier<br>paragraphe</p></body></html>",
        encoding="utf-8",
    )
    extracted = await extract_document(path, "nested.html")
    assert _paragraphs(extracted) == [
        "Intro gras et italique",
        "Premier point",
        "Second point",
        "fin de div",
        "Partie",
        "Montant",
        "Dernier paragraphe",
    ]


async def test_docx_tables_are_read_row_by_row(tmp_path: Path) -> None:
    table = [["Partie", "Montant"], ["Demandeur", "12 000 €"]]
    path = build_docx(tmp_path / "t.docx", ["Décompte des sommes"], table=table)
    extracted = await extract_document(path, "t.docx")
    assert _paragraphs(extracted) == ["Décompte des sommes", "Partie | Montant",
                                      "Demandeur | 12 000 €"]  # fmt: skip


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
async def test_txt_encodings(tmp_path: Path, encoding: str) -> None:
    path = build_txt(tmp_path / "n.txt", ["Élément nécessaire à la créance", PLANTED],
                     encoding=encoding)  # fmt: skip
    extracted = await extract_document(path, "n.txt")
    assert _paragraphs(extracted) == ["Élément nécessaire à la créance", PLANTED]


async def test_txt_without_blank_lines_has_one_paragraph_per_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("Première ligne.\r\nDeuxième ligne.\r\n\r\n", encoding="utf-8")
    extracted = await extract_document(path, "lines.txt")
    assert _paragraphs(extracted) == ["Première ligne.", "Deuxième ligne."]
