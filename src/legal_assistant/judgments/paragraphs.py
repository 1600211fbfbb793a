"""Numbered paragraphs ("1.", "2." … since the Cour de cassation's 2019 drafting reform).

A paragraph starts at a line beginning "N. " and runs to the next numbered paragraph,
the next heading line ("Réponse de la Cour", "Vu …", "PAR CES MOTIFS") or the next
zone, whichever comes first. Numbers must follow each other (7 after 6): a "3. " inside
a quoted ground or a list does not break the sequence, and nothing is read in the
annexes, whose grounds number their own branches.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_START = re.compile(r"^[ \t]*(\d{1,3})\s?\.[ \t]+(?=\S)", re.M)
_FIRST_MAX = 3  # a decision's first numbered paragraph is 1 (2 or 3 if the text is cut)


@dataclass(frozen=True, slots=True)
class RawParagraph:
    n: int
    start: int  # joined-text offsets, [start, end)
    end: int


def find_paragraphs(text: str, stops: list[int], limit: int) -> list[RawParagraph]:
    """Paragraphs in text[:limit]; `stops` are sorted offsets (headings, zone starts)
    where a paragraph ends at the latest."""
    starts: list[tuple[int, int]] = []
    expected: int | None = None
    for match in _START.finditer(text, 0, limit):
        n = int(match.group(1))
        if (expected is None and 1 <= n <= _FIRST_MAX) or n == expected:
            starts.append((n, match.start() + len(match.group(0)) - len(match.group(0).lstrip())))
            expected = n + 1
    out: list[RawParagraph] = []
    for i, (n, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else limit
        stop_index = bisect.bisect_right(stops, start)
        if stop_index < len(stops):
            end = min(end, stops[stop_index])
        out.append(RawParagraph(n, start, end))
    return out
