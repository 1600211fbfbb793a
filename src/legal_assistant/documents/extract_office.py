"""DOCX (python-docx) and ODT (odfpy): paragraphs, headings, list items and table rows in
document order, as one page of blank-line-separated paragraphs.

The zip is checked (`sniff.check_zip`) before either parser sees it."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.reading import Reading, join_blocks, single_page
from legal_assistant.documents.sniff import check_zip


def read_docx(path: Path) -> Reading:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_zip(path)
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, ExpatError, SyntaxError) as exc:
        # lxml's XMLSyntaxError is a SyntaxError; KeyError: a missing part.
        raise DocumentError("corrupt_file", f"DOCX: {exc}") from exc

    heading_ids = _heading_style_ids(document)

    def paragraphs() -> Iterator[tuple[str, bool]]:
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                # python-docx's public `paragraph.style` scans all styles on every call
                # (4 s for 1,800 paragraphs); the style id off the element is instant.
                yield block.text, block._p.style in heading_ids
            elif isinstance(block, Table):
                yield from ((row, False) for row in _table_rows(block))

    title = (document.core_properties.title or "").strip() or None
    text, headings = join_blocks(list(paragraphs()))
    return single_page("docx", text, title, headings)


def _heading_style_ids(document: Any) -> frozenset[str]:
    # Built-in names are English in the file whatever Word's language ("Heading 1",
    # "Title"); some templates use French names ("Titre 1").
    ids = set()
    for style in document.styles:
        name = (getattr(style, "name", None) or "").lower()
        style_id = getattr(style, "style_id", None)
        if style_id and name.startswith(("heading", "title", "titre")):
            ids.add(style_id)
    return frozenset(ids)


def _table_rows(table: Any) -> Iterator[str]:
    # A row is one paragraph ("cell | cell"); merged cells repeat in python-docx, once here.
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(p.text for p in cell.paragraphs).strip()
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            yield " | ".join(cells)


def read_odt(path: Path) -> Reading:
    from odf import teletype
    from odf.namespaces import TEXTNS
    from odf.opendocument import load

    check_zip(path)
    try:
        document = load(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, ExpatError, SyntaxError) as exc:
        raise DocumentError("corrupt_file", f"ODT: {exc}") from exc

    blocks = {(TEXTNS, "p"), (TEXTNS, "h")}
    paragraphs: list[tuple[str, bool]] = []
    # Depth-first in document order, without recursion (a hostile file can nest deeply).
    stack: list[Any] = [document.text]
    while stack:
        node = stack.pop()
        if getattr(node, "qname", None) in blocks:
            paragraphs.append((teletype.extractText(node), node.qname == (TEXTNS, "h")))
            continue  # a paragraph's own children are its text
        stack.extend(reversed(getattr(node, "childNodes", [])))
    title = None
    for node in document.meta.childNodes:
        if getattr(node, "qname", (None, None))[1] == "title":
            title = teletype.extractText(node).strip() or None
    text, headings = join_blocks(paragraphs)
    return single_page("odt", text, title, headings)
