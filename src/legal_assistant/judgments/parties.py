"""The parties, as the introduction names them.

"M. [N] [R], domicilié [Adresse 2], a formé le pourvoi n° … contre l'arrêt …, dans le
litige l'opposant à la caisse primaire …, dont le siège est …, défenderesse à la
cassation." Several parties are enumerated "1°/ …, 2°/ …"; "En présence :" introduces
parties that are neither. Names stay as written (pseudonymised placeholders included);
a name is cut before what describes it (domicile, seat, capacity).
"""

from __future__ import annotations

import re

from legal_assistant.judgments.model import Party

_LODGED = re.compile(
    r"(?:a|ont)\s+form[ée]s?\s+(?:le|un|les|des)\s+pourvois?|Statuant\s+sur\s+le\s+pourvoi\s+form[ée]\s+par",
    re.I,
)
_OPPOSING = re.compile(r"dans\s+le\s+litige\s+l['’]opposant\s*(?::|à|au|aux)", re.I)
_DEFENDANT_END = re.compile(r"d[ée]fend(?:eur|eresse|eurs|eresses)\s+[àa]\s+la\s+cassation", re.I)
_PRESENCE = re.compile(r"En\s+pr[ée]sence\s*(?:de)?\s*:", re.I)
_ITEM = re.compile(r"(?:^|\n)\s*\d+\s?°\s?/\s*")
_DESCRIPTION = re.compile(
    r",\s*(?:domicili|demeurant|dont\s+le\s+si[èe]ge|ayant\s+(?:son|leur)\s+si[èe]ge|pris|prise|agissant|n[ée]e?\s|"
    r"tous\s+deux|toutes\s+deux|venant|en\s+(?:sa|leur)\s+qualit|représent|elle-même|lui-même|société\s+(?:par|à|anonyme|civile)|"
    r"association|syndicat\s+des|établissement|exerçant|ès\s+qualités)|\s+(?:a|ont)\s+form[ée]",
    re.I,
)
_BLANK = re.compile(r"\n[ \t]*\n\s*")
_ITEM_AT = re.compile(r"[ \t]*\d+\s?°\s?/")
_MAX_PARTIES = 40
_MAX_NAME = 200


def parties(intro: str) -> tuple[Party, ...]:
    lodged = _LODGED.search(intro)
    if lodged is None:
        return ()
    found: list[Party] = []
    block_start = _block_start(intro, lodged.start())
    before = intro[block_start : lodged.start()]
    if lodged.group(0).lower().startswith("statuant"):
        before = intro[lodged.end() : lodged.end() + 600].split("contre")[0]
    found += [Party(name, "demandeur") for name in _names(before)]
    opposing = _OPPOSING.search(intro, lodged.end())
    if opposing is not None:
        end = _DEFENDANT_END.search(intro, opposing.end())
        stop = end.start() if end else min(len(intro), opposing.end() + 3000)
        found += [Party(name, "defendeur") for name in _names(intro[opposing.end() : stop])]
        presence = _PRESENCE.search(intro, stop)
        if presence is not None:
            tail = intro[presence.end() : presence.end() + 3000]
            tail = (
                re.split(r"\n\s*\n(?=[A-Z][a-z])(?!\d)", tail.strip(), maxsplit=1)[0]
                if not _ITEM.match(tail)
                else tail
            )
            found += [Party(name, "autre") for name in _names(_items_block(tail))]
    return tuple(found[:_MAX_PARTIES])


def _block_start(intro: str, at: int) -> int:
    """Start of the paragraph that ends with "a formé le pourvoi", or of the enumeration
    ("1°/ …", "2°/ …", one paragraph each) that it closes."""
    starts = [0, *(m.end() for m in _BLANK.finditer(intro, 0, at))]
    index = len(starts) - 1
    while index > 0 and _ITEM_AT.match(intro, starts[index - 1]):
        index -= 1
    return starts[index]


def _items_block(text: str) -> str:
    """Only the enumerated lines of a "En présence :" block."""
    lines = []
    for paragraph in re.split(r"\n\s*\n", text):
        if _ITEM.match("\n" + paragraph.strip()):
            lines.append(paragraph)
        elif lines:
            break
    return "\n\n".join(lines)


def _names(block: str) -> list[str]:
    block = block.strip()
    if not block:
        return []
    pieces = (
        [p for p in _ITEM.split("\n" + block) if p.strip()]
        if _ITEM.search("\n" + block)
        else [block]
    )
    names: list[str] = []
    for piece in pieces:
        piece = re.sub(r"^\s*(?:à|a|de|du|des|au|aux)\s+(?=[A-Zl\[])", "", piece.strip())
        description = _DESCRIPTION.search(piece)
        name = piece[: description.start()] if description else piece.split(",")[0]
        name = re.sub(r"\s+", " ", name).strip(" ,;:")
        if name.endswith(".") and not name.endswith("..."):  # "X..." is a pseudonym
            name = name[:-1].rstrip()
        if 2 <= len(name) <= _MAX_NAME and not name.lower().startswith(
            ("le dossier", "sur le rapport")
        ):
            names.append(name)
    return names
