"""What every format reader returns: a document opened, its pages read lazily.

Readers (`extract_pdf`, `extract_office`, `extract_markup`) open and validate the file
up front (so a bad file fails before any page is reported) and yield pages one by one,
so the worker can stream each page to the backend as soon as it is read."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from legal_assistant.documents.model import Page


@dataclass(frozen=True, slots=True)
class OcrOptions:
    enabled: bool = True
    command: str = "tesseract"  # a name looked up on PATH, or a path
    languages: str = "fra+eng"
    page_timeout_s: float = 120.0
    dpi: int = 300  # Tesseract's sweet spot for body text


@dataclass(slots=True)
class Reading:
    format: str
    total: int  # pages the iterator will yield
    paginated: bool
    pages: Iterator[Page]
    title: str | None = None
    # Filled while `pages` is consumed (e.g. "page 4: OCR failed ...").
    warnings: list[str] = field(default_factory=list)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\ufffe\u00ad]")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
_BLANK_LINES = re.compile(r"\n[ \t\u00a0]*\n\s*")


def clean_text(text: str) -> str:
    """Line endings to \\n, control characters and soft hyphens out, trailing spaces off.

    Offsets of passages are into this cleaned text, which is what the page view shows."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    return _TRAILING_SPACE.sub("\n", text).strip()


def join_paragraphs(paragraphs: Iterable[str]) -> str:
    """Non-paginated formats: one page whose paragraphs are separated by one blank line
    (so passage paragraph numbers count blank-line-separated blocks)."""
    return join_blocks((p, False) for p in paragraphs)[0]


def join_blocks(blocks: Iterable[tuple[str, bool]]) -> tuple[str, tuple[int, ...]]:
    """Like join_paragraphs for (paragraph, is_heading) pairs; also returns the start
    offsets of the heading paragraphs in the joined text."""
    kept: list[str] = []
    headings: list[int] = []
    offset = 0
    for paragraph, heading in blocks:
        cleaned = _BLANK_LINES.sub("\n", clean_text(paragraph))
        if not cleaned:
            continue
        if kept:
            offset += 2  # the blank line
        if heading:
            headings.append(offset)
        kept.append(cleaned)
        offset += len(cleaned)
    return "\n\n".join(kept), tuple(headings)


def single_page(
    fmt: str, text: str, title: str | None = None, headings: tuple[int, ...] = ()
) -> Reading:
    page = Page(number=1, text=text, headings=headings)
    return Reading(format=fmt, total=1, paginated=False, pages=iter([page]), title=title)
