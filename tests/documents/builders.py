"""Test documents built from real legal text (the Code civil corpus), with known content
on known pages. Shared by the extraction, passage, index, API and UI tests.

Import from any test directory as `from documents.builders import ...` (tests/ is on
sys.path through tests/conftest.py, as for app_harness; tests/documents/ has no
__init__.py, so `documents` is a namespace package).

Corpus:
- `corpus_article("1240") -> Article` (number, text, path), `corpus_articles(n, start=0)`
  (deterministic: sorted by path, empty articles skipped). `CORPUS_DIR` is
  `LEGAL_ASSISTANT_CORPUS` or `../shared/corpus` next to the repository.
- `article_blocks(articles)` -> ["Article N", text, ...]: blocks for any builder.

Builders (each writes `path` and returns it). `blocks` is a list of paragraphs; a block
starting with "# " is a heading (DOCX Heading 1, ODT text:h, HTML h1, RTF bold, Markdown
as is, TXT without the "#"):
- `build_pdf(path, pages, *, scanned=(), title=None)`: `pages[i]` (a list of blocks) is
  page i+1, text layer drawn with reportlab (Helvetica, cp1252: French text is fine);
  page numbers in `scanned` (1-based) are images only (text rendered with Pillow, as a
  scanner would), so only OCR can read them. Raises ValueError if a page overflows, so
  what you put on page n is on page n.
- `build_scanned_pdf(path, pages)`: every page an image (Pillow's own PDF writer).
- `build_encrypted_pdf(path, pages, password="secret")`: needs a user password.
- `build_corrupt_pdf(path)`: a PDF header then garbage.
- `build_docx(path, blocks, *, table=None)`, `build_odt(path, blocks)`,
  `build_rtf(path, blocks)`, `build_html(path, blocks)` (with a <script> and a <style>
  whose text must not be extracted: SCRIPT_TEXT, STYLE_TEXT), `build_markdown(path,
  blocks)`, `build_txt(path, blocks, encoding="utf-8")`.
- `build_zip_bomb_docx(path, inflated_mb=64)`: a DOCX whose document.xml inflates ~1000:1.
- `build_png(path)`: a real PNG (write it under a .pdf name to test content sniffing).
- `render_page_image(blocks, dpi=200) -> PIL.Image`: a "scanned" A4 page.
"""

from __future__ import annotations

import functools
import os
import random
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CORPUS_DIR = Path(
    os.environ.get("LEGAL_ASSISTANT_CORPUS")
    or Path(__file__).resolve().parents[3] / "shared" / "corpus"
)
SCRIPT_TEXT = "SCRIPT-TEXT-MUST-NOT-APPEAR"
STYLE_TEXT = "STYLE-TEXT-MUST-NOT-APPEAR"

_A4 = (595.28, 841.89)  # points
_MARGIN = 56.0
_FONT_SIZE = 11.0
_LEADING = 14.0
_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
)


@dataclass(frozen=True)
class Article:
    number: str  # "1240", "L121-21" ...
    text: str  # the article's body (its paragraphs separated by blank lines)
    path: Path

    @property
    def heading(self) -> str:
        return f"Article {self.number}"


@functools.cache
def _corpus_index() -> dict[str, Path]:
    root = CORPUS_DIR / "code-civil"
    if not root.is_dir():
        raise FileNotFoundError(f"corpus not found at {root} (set LEGAL_ASSISTANT_CORPUS)")
    return {p.stem.removeprefix("article-"): p for p in sorted(root.rglob("article-*.md"))}


def _read_article(number: str, path: Path) -> Article:
    text = path.read_text(encoding="utf-8")
    body = re.sub(r"^#[^\n]*\n", "", text, count=1).strip()
    return Article(number=number, text=body, path=path)


def corpus_article(number: str) -> Article:
    return _read_article(number, _corpus_index()[number])


def corpus_articles(count: int, *, start: int = 0, max_chars: int | None = None) -> list[Article]:
    """`count` non-empty articles in path order from position `start` (optionally only
    those of at most `max_chars`, e.g. to fit several on a PDF page)."""
    found: list[Article] = []
    for number, path in list(_corpus_index().items())[start:]:
        article = _read_article(number, path)
        if article.text and (max_chars is None or len(article.text) <= max_chars):
            found.append(article)
            if len(found) == count:
                return found
    raise ValueError(f"the corpus has fewer than {count} matching articles")


def article_blocks(articles: Iterable[Article]) -> list[str]:
    blocks: list[str] = []
    for article in articles:
        blocks.append(article.heading)
        blocks.extend(p.strip() for p in article.text.split("\n\n") if p.strip())
    return blocks


def _plain(block: str) -> str:
    return block[2:] if block.startswith("# ") else block


# --- PDF -------------------------------------------------------------------------------


def _wrap(text: str, width: float) -> list[str]:
    from reportlab.lib.utils import simpleSplit

    lines: list[str] = []
    for raw in text.split("\n"):
        lines.extend(simpleSplit(raw, "Helvetica", _FONT_SIZE, width) or [""])
    return lines


def build_pdf(
    path: Path,
    pages: Sequence[Sequence[str]],
    *,
    scanned: Iterable[int] = (),
    title: str | None = None,
) -> Path:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    scanned_pages = set(scanned)
    pdf = canvas.Canvas(str(path), pagesize=_A4)
    if title:
        pdf.setTitle(title)
    width = _A4[0] - 2 * _MARGIN
    for number, blocks in enumerate(pages, start=1):
        if number in scanned_pages:
            image = render_page_image(blocks)
            pdf.drawImage(ImageReader(image), 0, 0, width=_A4[0], height=_A4[1])
        else:
            _draw_text_page(pdf, blocks, width, number)
        pdf.showPage()
    pdf.save()
    return path


def _draw_text_page(pdf: object, blocks: Sequence[str], width: float, number: int) -> None:
    y = _A4[1] - _MARGIN
    for block in blocks:
        heading = block.startswith("# ")
        for line in _wrap(_plain(block), width):
            if y < _MARGIN:
                raise ValueError(f"page {number} overflows: put fewer blocks on it")
            pdf.setFont("Helvetica-Bold" if heading else "Helvetica", _FONT_SIZE)  # type: ignore[attr-defined]
            pdf.drawString(_MARGIN, y, line)  # type: ignore[attr-defined]
            y -= _LEADING
        y -= _LEADING / 2  # paragraph spacing


def build_scanned_pdf(path: Path, pages: Sequence[Sequence[str]], *, dpi: int = 200) -> Path:
    images = [render_page_image(blocks, dpi=dpi).convert("RGB") for blocks in pages]
    images[0].save(path, "PDF", resolution=float(dpi), save_all=True, append_images=images[1:])
    return path


def build_encrypted_pdf(
    path: Path, pages: Sequence[Sequence[str]], *, password: str = "secret"
) -> Path:
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=_A4, encrypt=StandardEncryption(password))
    for number, blocks in enumerate(pages, start=1):
        _draw_text_page(pdf, blocks, _A4[0] - 2 * _MARGIN, number)
        pdf.showPage()
    pdf.save()
    return path


def build_corrupt_pdf(path: Path) -> Path:
    noise = random.Random(13).randbytes(8192)
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog" + noise)
    return path


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in _FONT_FILES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font


def render_page_image(blocks: Sequence[str], *, dpi: int = 200) -> Image.Image:
    """An A4 page image of `blocks` in 12 pt type, like a 200 dpi office scan."""
    size = (int(8.27 * dpi), int(11.69 * dpi))
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = _font(int(12 / 72 * dpi))
    margin = int(0.8 * dpi)
    line_height = int(12 / 72 * dpi * 1.5)
    y = margin
    for block in blocks:
        for line in _wrap_pixels(_plain(block), font, size[0] - 2 * margin, draw):
            if y > size[1] - margin:
                raise ValueError("scanned page overflows: put fewer blocks on it")
            draw.text((margin, y), line, fill=0, font=font)
            y += line_height
        y += line_height // 2
    return image


def _wrap_pixels(text: str, font: object, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    lines: list[str] = []
    for raw in text.split("\n"):
        current = ""
        for word in raw.split():
            candidate = f"{current} {word}".strip()
            if current and draw.textlength(candidate, font=font) > width:  # type: ignore[arg-type]
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return lines


def build_png(path: Path) -> Path:
    render_page_image(["Une image, pas un PDF."], dpi=50).save(path, "PNG")
    return path


# --- Office and text formats -----------------------------------------------------------


def build_docx(
    path: Path, blocks: Sequence[str], *, table: Sequence[Sequence[str]] | None = None
) -> Path:
    import docx

    document = docx.Document()
    for block in blocks:
        if block.startswith("# "):
            document.add_heading(block[2:], level=1)
        else:
            document.add_paragraph(block)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    document.save(str(path))
    return path


def build_odt(path: Path, blocks: Sequence[str]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    for block in blocks:
        if block.startswith("# "):
            document.text.addElement(H(outlinelevel=1, text=block[2:]))
        else:
            document.text.addElement(P(text=block))
    document.save(str(path))
    return path


def _rtf_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ord(ch) < 128:
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\u{code if code < 32768 else code - 65536}?")
    return "".join(out)


def build_rtf(path: Path, blocks: Sequence[str]) -> Path:
    body = []
    for block in blocks:
        text = _rtf_escape(_plain(block))
        body.append(f"{{\\b {text}}}\\par" if block.startswith("# ") else f"{text}\\par")
    rtf = "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n"
    path.write_text(rtf + "\n".join(body) + "\n}", encoding="ascii")
    return path


def build_html(path: Path, blocks: Sequence[str]) -> Path:
    from html import escape

    body = []
    for block in blocks:
        if block.startswith("# "):
            body.append(f"<h1>{escape(block[2:])}</h1>")
        else:
            body.append(f"<p>{escape(block)}</p>")
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Dossier</title>"
        f"<style>body {{ content: '{STYLE_TEXT}'; }}</style></head><body>"
        f"<script>var leaked = '{SCRIPT_TEXT}';</script>" + "\n".join(body) + "</body></html>"
    )
    path.write_text(html, encoding="utf-8")
    return path


def build_markdown(path: Path, blocks: Sequence[str]) -> Path:
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def build_txt(path: Path, blocks: Sequence[str], *, encoding: str = "utf-8") -> Path:
    path.write_text("\n\n".join(_plain(b) for b in blocks) + "\n", encoding=encoding)
    return path


def build_zip_bomb_docx(path: Path, *, inflated_mb: int = 64) -> Path:
    """A DOCX-shaped zip whose document.xml declares (and really inflates to) `inflated_mb`
    MB of spaces: ~1000:1, the shape of a zip bomb."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w") as member:
            member.write(b'<?xml version="1.0"?><w:document><w:body><w:p><w:r><w:t>')
            chunk = b" " * (1024 * 1024)
            for _ in range(inflated_mb):
                member.write(chunk)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return path
