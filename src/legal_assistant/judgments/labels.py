"""Passage labels for a judgment: where in the decision a passage lies.

A passage of a judgment is labelled by its zone and the numbered paragraph it starts in
(or the first one starting inside it): "Réponse de la Cour, § 7", "Faits et procédure,
§ 2"; without a numbered paragraph, by the zone alone ("Dispositif"). The zone is named
by its printed heading when the decision has one for it ("Réponse de la Cour",
"Sur le premier moyen"), else by the Court's zone name in French. Only labels change:
offsets and texts stay as passages cut them. A non-judgment's passages are returned as
they are.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from legal_assistant.documents.model import Extracted, Passage
from legal_assistant.documents.passages import split_passages
from legal_assistant.judgments.model import Judgment, Paragraph, Zone, ZoneSpan
from legal_assistant.judgments.parse import analyse

log = logging.getLogger("legal_assistant")

ZONE_NAMES: dict[Zone, str] = {
    "introduction": "En-tête",
    "expose": "Faits et procédure",
    "moyens": "Moyens",
    "motivations": "Motivation",
    "dispositif": "Dispositif",
    "annexes": "Annexes",
}
_TITLE_MAX = 60


def zone_label(zone: ZoneSpan) -> str:
    title = zone.title
    if title and len(title) <= _TITLE_MAX and zone.zone != "introduction":
        return title.rstrip(" :")
    return ZONE_NAMES[zone.zone]


def label_passages(passages: Sequence[Passage], judgment: Judgment) -> list[Passage]:
    if not judgment.is_judgment:
        return list(passages)
    return [dataclasses.replace(p, label=_label(p, judgment)) for p in passages]


def _label(passage: Passage, judgment: Judgment) -> str | None:
    # The text at the top of a PDF page continuing the paragraph cut at the previous
    # page's end keeps that paragraph's number.
    paragraph = _paragraph_for(judgment.paragraphs, passage) or _continued(judgment, passage)
    # Named after the paragraph's zone: a passage may begin with the previous zone's
    # heading ("Examen du moyen") above a paragraph that answers the ground.
    where = (
        (paragraph.page, paragraph.char_start) if paragraph else (passage.page, passage.char_start)
    )
    zone = _zone_at(judgment.zones, *where)
    if zone is None:
        return passage.label
    name = zone_label(zone)
    return f"{name}, § {paragraph.n}" if paragraph is not None else name


def _zone_at(zones: Sequence[ZoneSpan], page: int, offset: int) -> ZoneSpan | None:
    """The zone piece containing (page, offset), else the last one before it."""
    found: ZoneSpan | None = None
    for zone in zones:
        if (zone.page, zone.char_start) <= (page, offset):
            found = zone
        else:
            break
    return found


def _continued(judgment: Judgment, passage: Passage) -> Paragraph | None:
    """The paragraph cut at the previous page's end, when the passage continues it: the
    passage cutter itself carried that paragraph's "§ n" over the page break (it does
    so for the text at the top of a PDF page, before any marker)."""
    if passage.label is None or not passage.label.startswith("§ "):
        return None
    previous = [p for p in judgment.paragraphs if p.page == passage.page - 1]
    on_page = [p for p in judgment.paragraphs if p.page == passage.page]
    if not previous or passage.label != f"§ {previous[-1].n}":
        return None
    if on_page and on_page[0].char_start <= passage.char_start:
        return None
    return previous[-1]


def _paragraph_for(paragraphs: Sequence[Paragraph], passage: Passage) -> Paragraph | None:
    """The paragraph the passage starts in, else the first that starts inside it."""
    for paragraph in paragraphs:
        if paragraph.page != passage.page:
            continue
        if paragraph.char_start <= passage.char_start < paragraph.char_end:
            return paragraph
        if passage.char_start <= paragraph.char_start < passage.char_end:
            return paragraph
    return None


def read_document(extracted: Extracted) -> tuple[list[Passage], Judgment]:
    """Passages and structure of an extracted document, as ingestion stores them (run in
    the ingestion's worker thread: pure and fast). The parser is written never to raise;
    if a bug makes it, the document is still ingested, as a non-judgment, and the bug is
    logged — a decision must never fail to be searchable because its outline did."""
    passages = split_passages(extracted)
    try:
        judgment = analyse(extracted.pages, extracted.paginated)
    except Exception:
        log.exception("reading the structure of a document failed")
        judgment = Judgment.not_a_judgment()
    return label_passages(passages, judgment), judgment
