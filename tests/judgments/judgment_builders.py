"""Real decisions of the Cour de cassation (the shared corpus) as test documents.

Import as `from judgments.judgment_builders import ...` (tests/ is on sys.path).
- `decision(id) -> Decision` (text, metadata); ids from the dev half only (see
  benchmarks/judgments.py for the split): tests never look at the held-out half.
- `decision_blocks(text)`: its blank-line-separated paragraphs.
- `pdf_pages(blocks)`: the blocks packed into A4 pages as tests/documents/builders.py
  draws them (a block too long for the rest of a page is cut at a line, so a paragraph
  really crosses pages).
- `long_decision_pages(text, pages)`: a decision stretched to `pages` PDF-like pages by
  repeating its grounds as "MOYENS ANNEXES" after the ruling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from documents.builders import CORPUS_DIR
from legal_assistant.documents.model import Page

JUDGMENTS_DIR = CORPUS_DIR / "judgments"
_A4_HEIGHT = 841.89
_MARGIN = 56.0
_LEADING = 14.0
_WIDTH = 595.28 - 2 * _MARGIN


@dataclass(frozen=True)
class Decision:
    id: str
    text: str
    meta: dict[str, Any]


def decision(decision_id: str) -> Decision:
    # Exactly as published (judilibre-19-60.222 has CRLF line ends its offsets count).
    with open(JUDGMENTS_DIR / f"{decision_id}.txt", encoding="utf-8", newline="") as f:
        text = f.read()
    meta = json.loads((JUDGMENTS_DIR / f"{decision_id}.json").read_text(encoding="utf-8"))
    return Decision(decision_id, text, meta)


def decision_blocks(text: str) -> list[str]:
    """Paragraphs, with the C1 characters some published texts carry made printable
    (U+009C is "œ", U+0085 is "…": a Windows-1252 mix-up at the source)."""
    clean = text.replace("\x9c", "œ").replace("\x85", "…").replace("\r", "")
    return [b.strip() for b in clean.split("\n\n") if b.strip()]


def _lines(block: str) -> list[str]:
    from reportlab.lib.utils import simpleSplit

    out: list[str] = []
    for raw in block.split("\n"):
        out.extend(simpleSplit(raw, "Helvetica", 11.0, _WIDTH) or [""])
    return out


def pdf_pages(blocks: Sequence[str]) -> list[list[str]]:
    """Blocks packed into pages the way builders.build_pdf draws them."""
    capacity = int((_A4_HEIGHT - 2 * _MARGIN) // _LEADING)
    pages: list[list[str]] = [[]]
    used = 0.0
    for block in blocks:
        lines = _lines(block)
        while lines:
            room = int(capacity - used)
            if room <= 1:
                pages.append([])
                used = 0.0
                continue
            take, lines = lines[:room], lines[room:]
            pages[-1].append("\n".join(take))
            used += len(take) + 0.5
    return [p for p in pages if p]


def long_decision_pages(text: str, pages: int, chars_per_page: int = 3000) -> list[Page]:
    """The decision, then "MOYENS ANNEXES" repeating its grounds until `pages` pages."""
    blocks = decision_blocks(text)
    moyens = [b for b in blocks if "fait grief" in b or "font grief" in b] or blocks[-3:]
    body = "\n\n".join(blocks)
    annex = ["MOYENS ANNEXES au présent arrêt", "Moyen produit par la SCP Exemple, avocat."]
    while len(body) + sum(len(a) + 2 for a in annex) < pages * chars_per_page:
        annex.extend(moyens)
    full = body + "\n\n" + "\n\n".join(annex)
    out: list[Page] = []
    at = 0
    for number in range(1, pages + 1):
        end = len(full) if number == pages else min(len(full), at + chars_per_page)
        if number < pages:  # cut at a line end, as a PDF page does
            cut = full.rfind("\n", at, end)
            end = cut if cut > at else end
        out.append(Page(number=number, text=full[at:end]))
        at = end
    return out


def corpus_path(name: str) -> Path:
    return JUDGMENTS_DIR / name
