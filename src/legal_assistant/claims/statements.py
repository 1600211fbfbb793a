"""An answer cut into statements: sentences with the citations they carry, at exact offsets.

A statement is a sentence (or a line: a list item, a heading). A citation written at the
end of a sentence stays with it whether it comes before the full stop ("... deux mois [1].")
or just after it ("... deux mois. [1]"): models write both. Markers are "[2]", "[1, 3]",
"[1-3]" for grounded chat (`marker="n"`) and "[§ 4]" / "(§ 4)" / "(§§ 4-5)" for the fiche
d'arrêt, which cites a decision's numbered paragraphs (`marker="paragraph"`).

Every statement keeps `answer[start:end] == text`, so a client can underline it in place.
`claim_text` is what the checker compares with a passage: the text without its markers.

Statements that claim nothing about the law or the file are `is_claim=False` (verdict
`not_a_claim`): greetings, transitions and headings, "I could not find..." sentences,
questions back to the user, the usual "this is not legal advice" line. A statement that
cites a source is always treated as a claim: the citation says it rests on something.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Marker = Literal["n", "paragraph"]

_NUMBERS = r"\d{1,4}(?:\s*(?:[,;]|[-–]|et|and)\s*(?:§\s*)?\d{1,4})*"
# "[1]", "[1, 3]", "[2;4]", "[1-3]" / "[1–3]".
_CITE_N = re.compile(r"\[\s*(\d{1,3}(?:\s*(?:[,;]|[-–])\s*\d{1,3})*)\s*\]")
# "[§ 4]", "(§ 4)", "(§§ 4-5)", "[§ 4, § 6]", "(§ 4 et 5)".
_CITE_PARAGRAPH = re.compile(r"[\[(]\s*§{1,2}\s*(" + _NUMBERS + r")\s*[\])]")
_CITES: dict[Marker, re.Pattern[str]] = {"n": _CITE_N, "paragraph": _CITE_PARAGRAPH}
# A range wider than this is not a citation anyone means ("[1-300]").
_MAX_RANGE = 20

# A sentence ends at . ! ? … (possibly doubled, possibly closed by a quote or bracket)
# followed by white space or the end of the line.
_END = re.compile(r"[.!?…]+[\"»”')\]]*(?=\s|$)")
# Words whose full stop is not a sentence end: titles, legal abbreviations, "art. 5".
# fmt: off
_ABBREVIATIONS = frozenset({
    "m", "mm", "mme", "mmes", "mlle", "me", "dr", "pr", "st", "ste", "art", "arts", "al",
    "alin", "cf", "ex", "p", "pp", "n", "nos", "vol", "ch", "chap", "sect", "civ",
    "com", "soc", "crim", "cass", "req", "ass", "plén", "ord", "dir", "cie", "sté", "vs",
    "e.g", "i.e", "ibid", "op", "cit", "mr", "mrs", "ms", "sr", "jr", "inc", "ltd",
    "co", "corp",
})
# fmt: on
_LIST_ITEM = re.compile(r"(?:[-*•–]|\d{1,2}[.)]|[a-z][.)])\s+")

# Statements that claim nothing (FR and EN), matched on the folded lower-case text.
_NOT_A_CLAIM = [
    re.compile(p)
    for p in (
        # greetings, thanks, sign-offs, offers of more help
        r"^(bonjour|bonsoir|salut|hello|hi|hey|good (morning|afternoon|evening)|dear)\b",
        r"^(merci|thank you|thanks|je vous en prie|you are welcome|you're welcome)\b",
        r"^(cordialement|bien a vous|best regards|kind regards|regards)\b",
        r"n'hesitez pas|do not hesitate|don't hesitate|feel free|je reste a (votre|ta)"
        r"|i hope (this|that) helps|j'espere que (cela|ceci|ca)|let me know|dites-moi",
        # nothing found / cannot answer
        r"\b(je n'ai (pas |rien )?trouve|je ne trouve pas|je n'ai pas pu trouver"
        r"|je ne (peux|suis pas en mesure de) (pas )?(repondre|vous repondre|trouver))",
        r"\b(i (could not|couldn't|cannot|can't|did not|didn't) (find|answer|locate)"
        r"|i found no|i was unable to|i am unable to|i'm unable to)",
        r"\b(aucun (passage|extrait|document)|no (passage|excerpt|document)s?)\b.*"
        r"\b(ne |n')?(traite|repond|mentionne|precise|contient|answers|mentions|deals"
        r"|addresses|covers)",
        r"\b(les (passages|extraits) (fournis )?ne|the (passages|excerpts) (provided |given )?"
        r"(do not|don't|does not))\b",
        r"\b(je prefere ne pas|i would rather not|reformulez|rephrase)\b",
        # disclaimers
        r"(conseil juridique|avis juridique|legal advice|consultez un avocat"
        r"|consult (a|an) (lawyer|attorney)|je ne suis pas (un )?avocat|i am not a lawyer)",
        # transitions that introduce what follows
        r"^(voici|here is|here are|en resume|pour resumer|in summary|to summari[sz]e"
        r"|en conclusion|in conclusion|en bref|in short)\s*[:,.]?\s*$",
        r"^(voici|here is|here are|here's)\b",
    )
]


@dataclass(frozen=True, slots=True)
class Statement:
    text: str  # answer[start:end], markers included
    start: int
    end: int
    citations: tuple[int, ...]  # cited numbers in order of appearance, each once
    claim_text: str  # the text without its citation markers, spaces collapsed
    is_claim: bool


def cited_numbers(text: str, marker: Marker = "n") -> tuple[int, ...]:
    """The numbers `text`'s markers cite, in order, each once ("[1-3]" is 1, 2, 3)."""
    cited: list[int] = []
    for match in _CITES[marker].finditer(text):
        for part in re.split(r"\s*(?:[,;]|\bet\b|\band\b)\s*", match.group(1)):
            bounds = [int(b) for b in re.findall(r"\d+", part)]
            if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= _MAX_RANGE:
                numbers = list(range(bounds[0], bounds[1] + 1))
            elif len(bounds) == 1:
                numbers = bounds
            else:
                numbers = []
            cited.extend(n for n in numbers if n not in cited)
    return tuple(cited)


def split_statements(answer: str, marker: Marker = "n") -> list[Statement]:
    """The statements of `answer`, in order, with exact offsets."""
    cite = _CITES[marker]
    out: list[Statement] = []
    line_start = 0
    for line in answer.split("\n"):
        for start, end in _sentences(line, cite):
            out.append(_statement(answer, line_start + start, line_start + end, marker))
        line_start += len(line) + 1
    return [s for s in out if s.text]


def strip_markers(text: str, marker: Marker = "n") -> str:
    """`text` without its citation markers, white space collapsed, no space before
    punctuation ("deux mois [1]." -> "deux mois.")."""
    bare = _CITES[marker].sub(" ", text)
    bare = " ".join(bare.split())
    return re.sub(r"\s+([.,;:!?…])", r"\1", bare)


def _sentences(line: str, cite: re.Pattern[str]) -> list[tuple[int, int]]:
    """[start, end) spans of the sentences of one line, stripped of outer blanks and of a
    leading list marker ("- ", "1. ")."""
    spans: list[tuple[int, int]] = []
    lead = len(line) - len(line.lstrip())
    item = _LIST_ITEM.match(line, lead)
    start = item.end() if item and line[item.end() :].strip() else 0
    for match in _END.finditer(line, start):
        end = match.end()
        if end <= start or not _is_end(line, match.start(), end):
            continue
        # Citations (and a full stop after them) just after the end belong to this sentence.
        while True:
            follow = re.compile(r"\s*").match(line, end)
            pos = follow.end() if follow else end
            marker = cite.match(line, pos)
            if not marker:
                break
            end = marker.end()
            stop = re.compile(r"[.!?…]+").match(line, end)
            end = stop.end() if stop else end
        spans.append((start, end))
        start = end
    spans.append((start, len(line)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        piece = line[s:e]
        lead = len(piece) - len(piece.lstrip())
        s, e = s + lead, s + len(piece.rstrip())
        if s < e:
            out.append((s, e))
    return out


def _is_end(line: str, dot: int, end: int) -> bool:
    rest = line[end:].lstrip()
    if rest[:1].islower():
        return False  # "etc. et ...", "c. civ. art." : the sentence goes on
    if line[dot] == "." and end - dot == 1:
        word = re.search(r"([\w.]+)$", line[:dot])
        if word:
            w = word.group(1).lower()
            if w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
                return False  # "M. Dupont", "art. 5", "L. 1234-9"
            if w.isdigit() and len(w) <= 2 and rest[:1].isdigit():
                return False  # "1. 2" inside a numbering
    return True


def _statement(answer: str, start: int, end: int, marker: Marker) -> Statement:
    text = answer[start:end]
    citations = cited_numbers(text, marker)
    claim_text = strip_markers(text, marker)
    return Statement(
        text=text,
        start=start,
        end=end,
        citations=citations,
        claim_text=claim_text,
        is_claim=bool(citations) or is_claim(claim_text),
    )


def is_claim(text: str) -> bool:
    """Whether an uncited statement says something that would need a source."""
    bare = text.strip().strip("*_").strip()
    if not bare or bare.startswith("#"):
        return False  # a markdown heading
    if bare.endswith("?"):
        return False  # a question back to the user
    if bare.endswith(":"):
        return False  # introduces a list: the items carry the claims
    words = re.findall(r"[^\W\d_]+", bare)
    if len(words) < 3 and not re.search(r"\d", bare):
        return False  # "Réponse.", "En résumé", a bold label
    folded = _fold(bare.lower().replace("’", "'"))
    return not any(p.search(folded) for p in _NOT_A_CLAIM)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
