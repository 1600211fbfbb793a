"""`analyse(pages, paginated) -> Judgment`: the whole reading of a decision, no model.

Pure and bounded: regular expressions over the text, linear in its length; a field that
cannot be read is None. The offsets follow passages' rule (see text.py): a zone crossing
pages is one ZoneSpan per page, a paragraph crossing pages is cut at its page's end.
`paginated` does not change the reading (both kinds of Page carry their own text and
number); it is part of the signature so a caller never has to guess.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from legal_assistant.documents.model import Page
from legal_assistant.judgments import court as courts
from legal_assistant.judgments import header
from legal_assistant.judgments.detect import is_judgment
from legal_assistant.judgments.model import Judgment, Paragraph, Visa, Zone, ZoneSpan
from legal_assistant.judgments.paragraphs import RawParagraph, find_paragraphs
from legal_assistant.judgments.parties import parties
from legal_assistant.judgments.text import DecisionText, PageSpan
from legal_assistant.judgments.visa import parse_visa, visa_lines
from legal_assistant.judgments.zones import cut_zones, heading_starts

# Where the Cour de cassation's top block ends: the date, solution, president and
# numbers are printed above it.
_HEAD_END = re.compile(
    r"R\s?[ÉE]\s?P\s?U\s?B\s?L\s?I\s?Q\s?U\s?E\s+F\s?R\s?A\s?N\s?[ÇC]\s?A\s?I\s?S\s?E"
    r"|AU\s+NOM\s+DU\s+PEUPLE"
)
_HEAD_MAX = 4000
_INTRO_MAX = 60_000


@dataclass(frozen=True, slots=True)
class _Span:
    zone: Zone
    start: int  # joined-text offsets
    end: int
    title: str | None


def analyse(pages: Sequence[Page], paginated: bool) -> Judgment:
    """The structure of a court decision, or `Judgment(is_judgment=False)`."""
    del paginated  # see the module docstring
    decision = DecisionText(pages)
    text = decision.text
    if not is_judgment(text):
        return Judgment.not_a_judgment()
    cuts = cut_zones(text)
    spans = [
        _Span(cut.zone, cut.start, cuts[i + 1].start if i + 1 < len(cuts) else len(text), cut.title)
        for i, cut in enumerate(cuts)
    ]
    intro = text[: spans[0].end][:_INTRO_MAX]
    top = _HEAD_END.search(intro[:_HEAD_MAX])
    head = intro[: top.start()] if top else intro[:_HEAD_MAX]
    # The "ARRÊT … DU <date>" title line follows the top block.
    title_block = intro[: (top.end() + 600) if top else _HEAD_MAX]
    dispositif = "".join(text[s.start : s.end] for s in spans if s.zone == "dispositif")
    annexes = next((s.start for s in spans if s.zone == "annexes"), len(text))
    stops = sorted(set(heading_starts(text)) | {s.start for s in spans})
    raw = find_paragraphs(text, stops, annexes)
    placed = [(p, decision.page_span(p.start, p.end)) for p in raw]
    starts = [s.start for s in spans]

    def zone_of(offset: int) -> Zone:
        return spans[max(0, bisect.bisect_right(starts, offset) - 1)].zone

    return Judgment(
        is_judgment=True,
        court=courts.court(title_block),
        formation=courts.formation(title_block, text),
        date=header.decision_date(head) or header.decision_date(title_block),
        numbers=header.numbers(head, intro),
        solution=header.solution(head, dispositif),
        president=header.president(head),
        publication=header.publication(head),
        ecli=header.ecli(text[:_HEAD_MAX] + "\n" + text[-_HEAD_MAX:]),
        attacked=header.attacked(intro),
        parties=parties(intro),
        visa=tuple(_visa(text, spans)),
        zones=tuple(_zone_spans(decision, spans, placed)),
        paragraphs=tuple(
            Paragraph(
                n=p.n,
                zone=zone_of(p.start),
                page=piece.page,
                char_start=piece.start,
                char_end=piece.end,
            )
            for p, piece in placed
            if piece is not None
        ),
    )


def _visa(text: str, spans: list[_Span]) -> list[Visa]:
    """The visa lines of the reasoning (and grounds, for old layouts); anywhere before
    the ruling when no zone was read."""
    ranges = [(s.start, s.end) for s in spans if s.zone in ("motivations", "moyens")]
    if not ranges:
        end = next((s.start for s in spans if s.zone in ("dispositif", "annexes")), len(text))
        ranges = [(0, end)]
    out: list[Visa] = []
    seen: set[tuple[str, str | None]] = set()
    for start, end in ranges:
        for line_start, line_end in visa_lines(text[start:end]):
            for visa in parse_visa(text[start + line_start : start + line_end]):
                if (visa.article, visa.code) not in seen:
                    seen.add((visa.article, visa.code))
                    out.append(visa)
    return out


def _zone_spans(
    decision: DecisionText,
    spans: list[_Span],
    placed: list[tuple[RawParagraph, PageSpan | None]],
) -> Iterator[ZoneSpan]:
    for span in spans:
        for piece in decision.page_spans(span.start, span.end):
            inside = tuple(
                p.n
                for p, where in placed
                if where is not None
                and where.page == piece.page
                and span.start <= p.start < span.end
            )
            yield ZoneSpan(span.zone, span.title, piece.page, piece.start, piece.end, inside)
