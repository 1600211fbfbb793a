"""A parsed decision with its text: what the fiche reads and checks against.

The parser (`judgments.analyse`) gives offsets; this joins them to the page texts so the
fiche can ask "what does § 7 say", "which paragraphs form the `expose`", and "does this
quotation appear verbatim, and where". Verbatim means: the same characters once runs of
whitespace are one space and typographic apostrophes are plain ones (a PDF's line breaks
and a model's ’ are not differences of wording).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from legal_assistant.judgments.fiche import Anchor
from legal_assistant.judgments.model import Judgment, Paragraph, Zone, ZoneSpan

_SPACE = re.compile(r"\s+")
_SAME = str.maketrans({"’": "'", "‘": "'", "\u00a0": " ", "\u202f": " "})


def normalise(text: str) -> str:
    """The form quotations are compared in."""
    return _SPACE.sub(" ", text.translate(_SAME)).strip()


@dataclass(frozen=True, slots=True)
class PageText:
    number: int
    text: str


class _Flat:
    """All pages as one normalised string, with the way back to (page, offset)."""

    def __init__(self, pages: Sequence[PageText]) -> None:
        parts: list[str] = []
        # (position in the flat text, page number, offset in that page) at each piece.
        self._marks: list[tuple[int, int, int]] = []
        pos = 0
        for page in pages:
            text = page.text.translate(_SAME)
            for m in re.finditer(r"\S+|\s+", text):
                piece = m.group()
                if piece[0].isspace():
                    if parts and parts[-1] != " ":
                        self._marks.append((pos, page.number, m.start()))
                        parts.append(" ")
                        pos += 1
                    continue
                self._marks.append((pos, page.number, m.start()))
                parts.append(piece)
                pos += len(piece)
            if parts and parts[-1] != " ":
                self._marks.append((pos, page.number, len(text)))
                parts.append(" ")
                pos += 1
        self.text = "".join(parts)
        self._starts = [m[0] for m in self._marks]

    def locate(self, flat_pos: int) -> tuple[int, int]:
        i = max(0, bisect.bisect_right(self._starts, flat_pos) - 1)
        start, page, offset = self._marks[i]
        return page, offset + (flat_pos - start)


class Decision:
    """A judgment (`is_judgment` true) and its pages' text."""

    def __init__(self, judgment: Judgment, pages: Sequence[PageText]) -> None:
        self.judgment = judgment
        self.pages = {p.number: p.text for p in pages}
        self._paragraphs = {p.n: p for p in judgment.paragraphs}
        self._flat = _Flat(pages)

    # ------------------------------------------------------------------ reading
    def paragraph(self, n: int) -> Paragraph | None:
        return self._paragraphs.get(n)

    def paragraph_text(self, n: int) -> str | None:
        p = self._paragraphs.get(n)
        if p is None:
            return None
        return self.pages.get(p.page, "")[p.char_start : p.char_end]

    def paragraphs_in(self, zone: Zone) -> list[Paragraph]:
        return [p for p in self.judgment.paragraphs if p.zone == zone]

    def zones(self, zone: Zone) -> list[ZoneSpan]:
        return [z for z in self.judgment.zones if z.zone == zone]

    def span_text(self, span: ZoneSpan | Anchor) -> str:
        return self.pages.get(span.page, "")[span.char_start : span.char_end]

    def zone_text(self, zone: Zone) -> str:
        return "\n\n".join(self.span_text(z) for z in self.zones(zone))

    def zone_at(self, page: int, offset: int) -> Zone | None:
        for z in self.judgment.zones:
            if z.page == page and z.char_start <= offset < z.char_end:
                return z.zone
        return None

    def paragraph_at(self, page: int, offset: int) -> int | None:
        for p in self.judgment.paragraphs:
            if p.page == page and p.char_start <= offset < p.char_end:
                return p.n
        return None

    # ------------------------------------------------------------------ checking
    def find(self, quote: str) -> Anchor | None:
        """Where `quote` appears verbatim (see the module docstring), or None."""
        wanted = normalise(quote)
        if not wanted:
            return None
        at = self._flat.text.find(wanted)
        if at < 0:
            return None
        page, start = self._flat.locate(at)
        end_page, end = self._flat.locate(at + len(wanted) - 1)
        if end_page != page:  # across a page break: anchor the part on the first page
            end = len(self.pages.get(page, ""))
        else:
            end += 1
        return Anchor(page, start, end, self.zone_at(page, start))

    def anchor_of(self, span: ZoneSpan | Paragraph, start: int, end: int) -> Anchor:
        """An anchor for `text[start:end]` of a zone or paragraph's own text."""
        base = span.char_start
        return Anchor(span.page, base + start, base + end, self.zone_at(span.page, base + start))
