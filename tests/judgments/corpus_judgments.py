"""Real decisions of the corpus (/work/shared/corpus/judgments, Licence Ouverte 2.0), and
a Judgment built from the Court's own zone offsets (the files' metadata): what the fiche
is tested against independently of the parser's own reading."""

from __future__ import annotations

import json
import re
from pathlib import Path

from legal_assistant.judgments.decision import Decision, PageText
from legal_assistant.judgments.model import ZONES, Attacked, Judgment, Paragraph, ZoneSpan

CORPUS = Path("/work/shared/corpus/judgments")
_NUMBERED = re.compile(r"^(\d{1,3})\. ", re.MULTILINE)


def corpus_text(name: str) -> str:
    with open(CORPUS / f"{name}.txt", encoding="utf-8", newline="") as f:
        return f.read()


def zoned_judgment(name: str) -> Judgment:
    """The decision as Judilibre zoned it: zones from the metadata, numbered paragraphs
    read inside them (a line opening with "n. "), one page."""
    text = corpus_text(name)
    meta = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    spans: list[ZoneSpan] = []
    paragraphs: list[Paragraph] = []
    for zone in ZONES:
        for seg in (meta.get("zones") or {}).get(zone, []):
            start, end = seg["start"], min(seg["end"], len(text))
            numbers: list[int] = []
            hits = list(_NUMBERED.finditer(text, start, end))
            for i, m in enumerate(hits):
                stop = hits[i + 1].start() if i + 1 < len(hits) else end
                body_end = text.find("\n\n", m.start(), stop)
                stop = body_end if body_end != -1 else stop
                paragraphs.append(Paragraph(int(m.group(1)), zone, 1, m.start(), stop))
                numbers.append(int(m.group(1)))
            spans.append(ZoneSpan(zone, None, 1, start, end, tuple(numbers)))
    contested = meta.get("contested") or {}
    return Judgment(
        is_judgment=True,
        court=meta.get("jurisdiction"),
        formation=meta.get("chamber"),
        date=meta.get("date") or meta.get("decision_date"),
        numbers=tuple(meta.get("numbers") or ()),
        solution=meta.get("solution"),
        publication=meta["publication"] if isinstance(meta.get("publication"), str) else None,
        attacked=Attacked(contested.get("court"), contested.get("date")) if contested else None,
        zones=tuple(sorted(spans, key=lambda z: z.char_start)),
        paragraphs=tuple(sorted(paragraphs, key=lambda p: p.char_start)),
    )


def zoned_decision(name: str) -> Decision:
    return Decision(zoned_judgment(name), [PageText(1, corpus_text(name))])


def corpus_names() -> list[str]:
    return sorted(p.stem for p in CORPUS.glob("*.txt"))
