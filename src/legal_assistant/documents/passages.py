"""Passages: the units a document is searched and cited by, cut along its structure.

A unit starts where the text says one does — an article ("Article L121-21", "Art. 1240"),
a numbered judgment paragraph ("§ 12", "12. Selon..."), an "Attendu que" / "Considérant
que", a heading (DOCX/ODT/HTML heading styles, Markdown "#", "TITRE II", "Chapitre 3",
"PAR CES MOTIFS", a short all-caps line) — and runs to the next one. Then sizes are
bounded: a unit longer than `max_chars` is cut at paragraph breaks, else sentence ends,
else line ends, into pieces of similar length that keep its label; a heading with no
text of its own (at most a one-line subtitle) joins the unit it introduces; an
unlabelled scrap shorter than `min_chars` joins a neighbour.

Markers are looked for at line starts in PDFs (PDFium gives one line per visual line)
and at paragraph starts elsewhere. Passages never cross pages, so a PDF citation is
exact; text at the top of a page before any marker continues the previous page's unit
and keeps its label.

Offsets: `page.text[passage.char_start:passage.char_end] == passage.text`, exactly
(passages are trimmed of surrounding whitespace, nothing else). For non-paginated
formats `paragraph` is the 1-based number of the blank-line-separated paragraph the
passage starts in; for PDFs it is None.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from legal_assistant.documents.model import Extracted, Page, Passage

MAX_CHARS = 1500  # ~350-400 e5 tokens of French: under the 512-token window
MIN_CHARS = 200

_UPPER = "A-ZÀ-ÖØ-ÞŒ"
_ARTICLE = re.compile(
    r"(?:Article|ARTICLE|Art\.)\s+"
    r"(?P<prefix>LO|[LRDA])?\s*\.?\s*\*?\s*"
    r"(?P<number>premier|1er|\d+(?:\s*[-‑–.]\s*\d+)*)"
    # "515-14 bis", "L. 3211-12-A"; not " A" alone, which is "A défaut..." in French.
    r"(?P<suffix>\s+(?:bis|ter|quater|quinquies|sexies)\b|-[A-Z]\b)?"
)
_NUMBERED = re.compile(rf"(?:§\s*(?P<section>\d+)\b|(?P<number>\d{{1,3}})\.\s+(?=[{_UPPER}«\"“(]))")
_GROUND = re.compile(r"(?:(?:Mais|Et|Alors|Or)\s*,?\s+)?(?P<word>attendu|considérant)\b", re.I)
_STRUCTURE_HEADING = re.compile(
    r"(?:LIVRE|Livre|TITRE|Titre|CHAPITRE|Chapitre|SECTION|Section|Sous-section|SOUS-SECTION"
    r"|Paragraphe|PARAGRAPHE|PARTIE|Partie|ANNEXE|Annexe)\s+"
    r"(?:[IVXLCDM]+\b|\d+|premier|PREMIER|préliminaire|PRÉLIMINAIRE|[A-Z]\b)"
    r"|PAR CES MOTIFS|MOTIFS DE LA D[ÉE]CISION|EXPOS[ÉE] DU LITIGE|FAITS ET PROC[ÉE]DURE"
    r"|DISPOSITIF|SUR CE\b|Sur le (?:premier |deuxième |second |troisième |)moyen"
)
# The sections of a French judgment, each alone on its line.
_JUDGMENT_HEADING = re.compile(
    r"(?:Faits et proc[ée]dure|Examen (?:du|des) moyens?|[ÉE]nonc[ée] du moyen|R[ée]ponse de la "
    r"[Cc]our|Expos[ée] du litige|Motifs(?: de la d[ée]cision)?|Moyens? des parties|"
    r"Pr[ée]tentions(?: et moyens)? des parties|Discussion|Dispositif|Sur ce|"
    r"Sur (?:le|la|les) .{3,60})\s*:?",
)
_OUTLINE_HEADING = re.compile(rf"(?:[IVX]+|[A-H])\s*[.)\-–—]\s+[{_UPPER}]")
_MARKDOWN_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_SENTENCE_END = re.compile(r"[.!?…;:][\"»”’)\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    {"art", "al", "m", "mm", "mme", "me", "dr", "pr", "p", "pp", "n", "no", "cf", "civ",
     "cass", "ch", "com", "soc", "crim", "req", "ibid", "op", "cit", "etc", "vol", "ss"}
)  # fmt: skip
_HEADING_MAX_CHARS = 120


@dataclass(slots=True)
class _Unit:
    start: int
    end: int
    label: str | None
    heading_only: bool = False  # a heading line with no text of its own
    carried: bool = False  # continues the previous page's unit


def split_passages(
    extracted: Extracted, *, max_chars: int = MAX_CHARS, min_chars: int = MIN_CHARS
) -> list[Passage]:
    passages: list[Passage] = []
    carried_label: str | None = None
    for page in extracted.pages:
        units = _units(page, extracted.paginated, carried_label)
        if not units:
            continue
        carried_label = units[-1].label if extracted.paginated else None
        units = _merge_small(_merge_headings(units), page.text, min_chars, max_chars)
        paragraph_starts = None if extracted.paginated else _paragraph_starts(page.text)
        for unit in units:
            for start, end in _pieces(page.text, unit.start, unit.end, max_chars):
                passages.append(_passage(page, len(passages), start, end, unit.label,
                                         paragraph_starts))  # fmt: skip
    return passages


def legal_label(line: str) -> str | None:
    """The label a line starting a unit carries, or None when it starts no unit."""
    line = line.strip()
    heading = _MARKDOWN_HEADING.fullmatch(line)
    if heading:
        inner = heading.group(2).strip()
        return _article_label(inner, anywhere_rest=True) or _heading_text(inner)
    article = _article_label(line)
    if article:
        return article
    numbered = _NUMBERED.match(line)
    if numbered:
        return f"§ {numbered.group('section') or numbered.group('number')}"
    ground = _GROUND.match(line)
    if ground:
        return "Attendu que" if ground.group("word").lower() == "attendu" else "Considérant que"
    if _is_heading(line):
        return _heading_text(line)
    return None


def _article_label(line: str, *, anywhere_rest: bool = False) -> str | None:
    match = _ARTICLE.match(line)
    if not match:
        return None
    rest = line[match.end() :]
    stripped = rest.lstrip()
    # "Article 1240 du code civil dispose..." cites an article, it does not start one.
    if not (anywhere_rest or not stripped or stripped[0] in ":.-–—()[" or stripped[0].isupper()):
        return None
    prefix = match.group("prefix") or ""
    number = re.sub(r"\s+", "", match.group("number"))
    number = "1er" if number == "premier" else number
    suffix = (match.group("suffix") or "").strip()
    if suffix and not suffix.startswith("-"):
        suffix = f" {suffix}"  # "bis", "ter"...
    return f"Article {prefix}{number}{suffix}"


def _is_heading(line: str) -> bool:
    if len(line) > _HEADING_MAX_CHARS:
        return False
    if _STRUCTURE_HEADING.match(line) or _JUDGMENT_HEADING.fullmatch(line):
        return True
    if line.endswith((".", ",", ";")):
        return False
    if _OUTLINE_HEADING.match(line):
        return True
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 4 and all(ch.isupper() for ch in letters)


def _heading_text(line: str) -> str:
    text = " ".join(line.split())
    return text if len(text) <= _HEADING_MAX_CHARS else text[: _HEADING_MAX_CHARS - 1] + "…"


def _anchors(text: str, paginated: bool) -> list[tuple[int, int]]:
    """(start, end of its first line) of each place a unit may start: every line of a PDF
    page, every paragraph of other formats."""
    pattern = r"[^\n]+" if paginated else r"(?:^|(?<=\n\n))[^\n]+"
    return [(m.start(), m.end()) for m in re.finditer(pattern, text)]


def _units(page: Page, paginated: bool, carried_label: str | None) -> list[_Unit]:
    text = page.text
    if not text.strip():
        return []
    styled = set(page.headings)  # headings the file marks as such (DOCX/ODT/HTML)
    markers: list[tuple[int, int, str, bool]] = []  # start, end of marker line, label, heading
    for start, line_end in _anchors(text, paginated):
        line = text[start:line_end]
        label = legal_label(line)
        current = markers[-1][2] if markers else carried_label
        if label is not None and _enumeration_in_article(line, current):
            continue
        if label is not None:
            markers.append((start, line_end, label, _is_heading_marker(line)))
        elif start in styled and line.strip():
            markers.append((start, line_end, _heading_text(line.strip()), True))
    units: list[_Unit] = []
    first = markers[0][0] if markers else len(text)
    if text[:first].strip():
        units.append(_Unit(0, first, carried_label, carried=carried_label is not None))
    for i, (start, line_end, label, heading) in enumerate(markers):
        end = markers[i + 1][0] if i + 1 < len(markers) else len(text)
        heading_only = heading and _is_subtitle(text[line_end:end].strip())
        units.append(_Unit(start, end, label, heading_only=heading_only))
    return units


def _enumeration_in_article(line: str, current: str | None) -> bool:
    """ "1. Que la demande..." inside an article is one of its items, not a judgment's
    numbered paragraph ("§ 3" written out still is one)."""
    return bool(current and current.startswith("Article ") and _NUMBERED.match(line.strip())
                and not line.lstrip().startswith("§"))  # fmt: skip


def _is_subtitle(body: str) -> bool:
    """Nothing, or one short line that is not a sentence ("TITRE III" / "Des
    obligations"): a heading with such a body has no text of its own."""
    return not body or (
        "\n" not in body and len(body) <= _HEADING_MAX_CHARS and not body.endswith(tuple(".!?;"))
    )


def _is_heading_marker(line: str) -> bool:
    """A heading (not an article, numbered paragraph or ground) — it may stand alone."""
    line = line.strip()
    markdown = _MARKDOWN_HEADING.fullmatch(line)
    if markdown:
        return _article_label(markdown.group(2).strip(), anywhere_rest=True) is None
    return not (_article_label(line) or _NUMBERED.match(line) or _GROUND.match(line))


def _merge_headings(units: list[_Unit]) -> list[_Unit]:
    """A heading with no text of its own is the start of the unit that follows it."""
    merged: list[_Unit] = []
    pending_start: int | None = None
    for unit in units:
        if unit.heading_only:
            if pending_start is None:
                pending_start = unit.start
            continue
        if pending_start is not None:
            unit.start = pending_start
            pending_start = None
        merged.append(unit)
    if pending_start is not None:  # headings at the very end: keep them, as one unit
        tail = units[-1]
        merged.append(_Unit(pending_start, tail.end, tail.label))
    return merged


def _merge_small(units: list[_Unit], text: str, min_chars: int, max_chars: int) -> list[_Unit]:
    """An unlabelled scrap (a running header, a stray line) joins a neighbour."""
    out: list[_Unit] = []
    for unit in units:
        size = len(text[unit.start : unit.end].strip())
        fits = bool(out) and unit.end - out[-1].start <= max_chars
        if unit.label is None and size < min_chars and fits:
            out[-1].end = unit.end
        elif (
            out
            and out[-1].label is None
            and not out[-1].carried
            and (
                len(text[out[-1].start : out[-1].end].strip()) < min_chars
                and unit.end - out[-1].start <= max_chars
            )
        ):
            out[-1].end = unit.end
            out[-1].label = unit.label
        else:
            out.append(unit)
    return out


def _pieces(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Trimmed (start, end) spans covering text[start:end], each at most max_chars, cut at
    the strongest boundary available near an even share of the unit."""
    start, end = _trim(text, start, end)
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        count = -(-(end - start) // max_chars)  # pieces still needed, rounded up
        target = (end - start) // count
        low, high = start + max(1, target * 2 // 3), start + min(max_chars, target * 4 // 3)
        cut = _boundary(text, low, high, start + target)
        piece = _trim(text, start, cut)
        if piece[1] > piece[0]:
            pieces.append(piece)
        start = _trim(text, cut, end)[0]
    if end > start:
        pieces.append((start, end))
    return pieces


def _boundary(text: str, low: int, high: int, target: int) -> int:
    """Where to cut in [low, high]: a paragraph break, else a sentence end, else a line
    end, else a space; the candidate nearest `target` in the best class."""
    window = text[low:high]
    classes = [
        [m.start() for m in re.finditer(r"\n\s*\n", window)],
        [
            m.end()
            for m in _SENTENCE_END.finditer(window)
            if not _abbreviation(text, low + m.start())
        ],
        [m.start() for m in re.finditer(r"\n", window)],
        [m.start() for m in re.finditer(r"\s", window)],
    ]
    for candidates in classes:
        if candidates:
            return low + min(candidates, key=lambda c: abs(low + c - target))
    return high  # one unbroken run of characters: cut it anyway


def _abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    match = re.search(r"(\w+)$", text[max(0, dot - 12) : dot])
    if match is None:
        return False
    word = match.group(1)
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())  # "M. X"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _paragraph_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"(?:^|(?<=\n\n))\S", text)]


def _passage(
    page: Page,
    ordinal: int,
    start: int,
    end: int,
    label: str | None,
    paragraph_starts: list[int] | None,
) -> Passage:
    paragraph = None
    if paragraph_starts is not None:
        paragraph = max(1, bisect.bisect_right(paragraph_starts, start))
    return Passage(
        ordinal=ordinal,
        page=page.number,
        paragraph=paragraph,
        char_start=start,
        char_end=end,
        label=label,
        text=page.text[start:end],
    )
