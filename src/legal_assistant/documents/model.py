"""The data that flows through ingestion: an extracted document (its pages), and the
passages cut from it. Shared by extraction, the index, the API and the chat grounding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Where a page's text came from: the file's own text layer, OCR, or nowhere (a scanned
# page with OCR unavailable or failed — the page is kept and flagged, never dropped).
PageSource = Literal["text", "ocr", "none"]

SUPPORTED_FORMATS = ("pdf", "docx", "odt", "rtf", "txt", "md", "html")


@dataclass(frozen=True, slots=True)
class Page:
    number: int  # 1-based. PDFs: the physical page. Other formats: one page (1) per document.
    text: str
    source: PageSource = "text"
    note: str | None = None  # e.g. "no text, OCR not installed"
    # Start offsets (into `text`) of the paragraphs the file itself marks as headings
    # (DOCX heading styles, ODT text:h, HTML h1-h6): passage boundaries and labels.
    headings: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Extracted:
    format: str  # one of SUPPORTED_FORMATS
    pages: list[Page]
    # True for PDF: citations point at pages. False: they point at paragraph numbers.
    paginated: bool
    title: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Passage:
    ordinal: int  # 0-based position in the document
    page: int  # number of the Page it lies in (1 for non-paginated formats)
    paragraph: int | None  # 1-based paragraph number (DOCX/ODT/...); None for PDF
    char_start: int  # offsets into that page's text: page.text[char_start:char_end]
    char_end: int
    label: str | None  # "Article L121-21", "§ 12", "Attendu que", a heading
    text: str
