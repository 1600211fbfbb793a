"""A real decision uploaded as PDF, DOCX or TXT, extracted by the real extraction worker,
then structured: same fields, and every zone and paragraph offset exact in its page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from documents.builders import build_docx, build_pdf, build_txt, corpus_articles
from judgments.judgment_builders import decision, decision_blocks, pdf_pages
from legal_assistant.documents.extract import extract_document
from legal_assistant.documents.model import Extracted
from legal_assistant.judgments.labels import read_document
from legal_assistant.judgments.model import Judgment
from legal_assistant.judgments.parse import analyse

DECISION = "ECLI_FR_CCASS_2024_C300657"  # dev half; 18 numbered paragraphs, 3 grounds


async def _analysed(path: Path) -> tuple[Extracted, Judgment]:
    extracted = await extract_document(path, path.name)
    return extracted, analyse(extracted.pages, extracted.paginated)


@pytest.fixture(scope="module")
def blocks() -> list[str]:
    return decision_blocks(decision(DECISION).text)


def _check_structure(extracted: Extracted, judgment: Judgment) -> None:
    meta = decision(DECISION).meta
    assert judgment.is_judgment
    assert (judgment.date, judgment.numbers, judgment.solution, judgment.formation) == (
        meta["date"],
        tuple(meta["numbers"]),
        meta["solution"],
        meta["chamber"],
    )
    texts = {page.number: page.text for page in extracted.pages}
    assert [p.n for p in judgment.paragraphs] == list(range(1, 19))
    for paragraph in judgment.paragraphs:
        text = texts[paragraph.page][paragraph.char_start : paragraph.char_end]
        assert re.match(rf"{paragraph.n}\s?\.\s", text), (paragraph, text[:40])
        assert text == text.strip()
    for zone in judgment.zones:
        assert texts[zone.page][zone.char_start : zone.char_end].strip()
    order = [z.zone for z in judgment.zones]
    assert order[0] == "introduction" and "dispositif" in order
    first_dispositif = next(z for z in judgment.zones if z.zone == "dispositif")
    assert texts[first_dispositif.page][first_dispositif.char_start :].startswith("PAR CES MOTIFS")
    by_n = {p.n: p.zone for p in judgment.paragraphs}
    assert by_n[1] == "expose"
    assert {by_n[n] for n in by_n} >= {"expose", "moyens", "motivations"}


async def test_txt(tmp_path: Path, blocks: list[str]) -> None:
    extracted, judgment = await _analysed(build_txt(tmp_path / "arret.txt", blocks))
    _check_structure(extracted, judgment)


async def test_docx(tmp_path: Path, blocks: list[str]) -> None:
    extracted, judgment = await _analysed(build_docx(tmp_path / "arret.docx", blocks))
    _check_structure(extracted, judgment)


async def test_pdf_pages_and_a_paragraph_cut_at_a_page_end(
    tmp_path: Path, blocks: list[str]
) -> None:
    pages = pdf_pages(blocks)
    extracted, judgment = await _analysed(build_pdf(tmp_path / "arret.pdf", pages))
    assert len(extracted.pages) == len(pages) > 2
    _check_structure(extracted, judgment)
    assert len({p.page for p in judgment.paragraphs}) > 1
    # A paragraph that crosses a page end is kept on its first page, cut at the page end.
    texts = {page.number: page.text for page in extracted.pages}
    crossing = [
        p
        for p in judgment.paragraphs
        if p.char_end == len(texts[p.page].rstrip())
        and not texts[p.page][p.char_start : p.char_end].rstrip().endswith((".", ";", "»", ":"))
    ]
    assert crossing, "the builder cut no paragraph across pages"
    # Passages: the top of the next page, continuing the cut paragraph, keeps its number.
    passages, _ = read_document(extracted)
    cut = crossing[0]
    top = min((p for p in passages if p.page == cut.page + 1), key=lambda p: p.char_start)
    assert top.label is not None and top.label.endswith(f", § {cut.n}"), (cut, top)
    # A zone that spans pages is reported once per page.
    pages_of: dict[tuple[str, str | None], set[int]] = {}
    for zone in judgment.zones:
        pages_of.setdefault((zone.zone, zone.title), set()).add(zone.page)
    assert any(len(p) > 1 for p in pages_of.values())


async def test_statute_is_not_a_judgment(tmp_path: Path) -> None:
    articles = corpus_articles(30)
    blocks = [f"Article {a.number}\n{a.text}" for a in articles]
    _, judgment = await _analysed(build_txt(tmp_path / "code.txt", blocks))
    assert judgment == Judgment.not_a_judgment()
    assert judgment.to_dict() == {"is_judgment": False}
