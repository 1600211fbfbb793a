"""The decision as one text, and the way back to its pages.

The rules read a decision as a whole (a heading on page 3 closes a zone opened on
page 2), so the pages are joined with a blank line between them; every offset found in
the joined text maps back to (page, offset in that page's text). A span that crosses a
page end is cut there: like passages, a zone piece or a paragraph is exact on the page
it starts on (`page.text[char_start:char_end]`), and a zone crossing pages is reported
once per page.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from legal_assistant.documents.model import Page

PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class PageSpan:
    page: int  # the Page's number
    start: int  # offsets into that page's text
    end: int


class DecisionText:
    """The pages joined, with the start of each page in the joined text."""

    def __init__(self, pages: Sequence[Page]) -> None:
        self.pages = list(pages)
        starts: list[int] = []
        parts: list[str] = []
        at = 0
        for i, page in enumerate(self.pages):
            if i:
                parts.append(PAGE_SEPARATOR)
                at += len(PAGE_SEPARATOR)
            starts.append(at)
            # U+0085 (NEL) stands for "…" in some published texts: not a line break for
            # us, and the same length, so offsets are kept.
            parts.append(page.text.replace("\r", " ").replace("\x85", "…"))
            at += len(page.text)
        self.text = "".join(parts)
        self._starts = starts

    def page_span(self, start: int, end: int) -> PageSpan | None:
        """The piece of [start, end) on the page `start` lies on, trimmed of
        surrounding whitespace; None if it is only whitespace."""
        for piece in self.page_spans(start, end):
            return piece
        return None

    def page_spans(self, start: int, end: int) -> list[PageSpan]:
        """[start, end) cut at page ends, each piece trimmed, empty pieces dropped."""
        if not self.pages:
            return []
        out: list[PageSpan] = []
        index = max(0, bisect.bisect_right(self._starts, start) - 1)
        while index < len(self.pages):
            page_start = self._starts[index]
            page = self.pages[index]
            if page_start >= end:
                break
            lo = max(start, page_start) - page_start
            hi = min(end, page_start + len(page.text)) - page_start
            lo, hi = _trim(self.text, page_start + lo, page_start + hi)
            if hi > lo:
                out.append(PageSpan(page.number, lo - page_start, hi - page_start))
            index += 1
        return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
