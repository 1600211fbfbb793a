"""Text formats: TXT and Markdown (kept as written), RTF (striprtf), HTML (selectolax,
scripts and styles dropped, block elements become paragraphs). One page each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.reading import Reading, join_blocks, join_paragraphs, single_page

_BLANK_LINE = re.compile(r"\n[ \t\u00a0]*\n")
_MD_TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)

# Elements whose text is not content.
_DROPPED = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe", "object"})
# Elements that start and end a paragraph.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
        "thead", "tfoot", "tr", "td", "th", "ul", "caption", "summary", "details",
    }
)  # fmt: skip
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


@dataclass(frozen=True, slots=True)
class _Flush:
    """Marker on the traversal stack: the block being left ends here."""

    heading: bool


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252 (old French
    files), which decodes every byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def plain_paragraphs(text: str) -> list[str]:
    """Blank-line-separated blocks; a text with no blank line at all has one paragraph per
    line (a common way to write plain-text files)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _BLANK_LINE.search(text):
        return _BLANK_LINE.split(text)
    return text.split("\n")


def read_plain(path: Path, fmt: str) -> Reading:
    text = decode_text(path.read_bytes())
    title = None
    if fmt == "md":
        match = _MD_TITLE.search(text)
        title = match.group(1).strip() if match else None
    return single_page(fmt, join_paragraphs(plain_paragraphs(text)), title)


def read_rtf(path: Path) -> Reading:
    from striprtf.striprtf import rtf_to_text

    raw = path.read_bytes().decode("latin-1")  # RTF is 7-bit; \'xx escapes carry the rest
    try:
        text: str = rtf_to_text(raw, encoding="cp1252", errors="replace")  # type: ignore[no-untyped-call]
    except (ValueError, IndexError, LookupError) as exc:
        raise DocumentError("corrupt_file", f"RTF: {exc}") from exc
    # striprtf ends every \par with a newline: each line is one paragraph.
    return single_page("rtf", join_paragraphs(text.replace("\r", "").split("\n")))


def read_html(path: Path) -> Reading:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(decode_text(path.read_bytes()))
    title_node = tree.css_first("title")
    title = None
    if title_node is not None:
        title = (title_node.text() or "").strip() or None
    root = tree.body or tree.root
    if root is None:
        return single_page("html", "", title)
    text, headings = join_blocks(html_paragraphs(root))
    return single_page("html", text, title, headings)


def html_paragraphs(root: Any) -> list[tuple[str, bool]]:
    """Text of the tree, one paragraph per block element, flagged when it is a heading
    (h1-h6); iterative, because a hostile file can nest deeper than Python recurses."""
    paragraphs: list[tuple[str, bool]] = []
    current: list[str] = []

    def flush(heading: bool = False) -> None:
        text = " ".join("".join(current).split())
        if text:
            paragraphs.append((text, heading))
        current.clear()

    stack: list[Any] = list(reversed(list(root.iter(include_text=True))))
    while stack:
        node = stack.pop()
        if isinstance(node, _Flush):
            flush(node.heading)
            continue
        tag = node.tag
        if tag == "-text":
            current.append(node.text(deep=False) or "")
        elif tag == "br":
            current.append("\n")
        elif tag in _DROPPED or tag.startswith("-"):  # comments, doctype
            continue
        else:
            children = list(node.iter(include_text=True))
            if tag in _BLOCKS:
                flush()
                stack.append(_Flush(tag in _HEADINGS))
            stack.extend(reversed(children))
    flush()
    return paragraphs
