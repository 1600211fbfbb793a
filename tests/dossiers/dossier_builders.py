"""Real test documents built from the real corpus (Code civil articles, Etalab, Licence
Ouverte, in ../shared/corpus): PDFs with articles planted on known pages (fpdf2), DOCX
(python-docx), an encrypted PDF and a corrupt one."""

from __future__ import annotations

import re
from pathlib import Path

from docx import Document
from fpdf import FPDF

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "code-civil"
if not CORPUS.is_dir():  # the work tree may sit elsewhere: /work/shared is the source
    CORPUS = Path("/work/shared/corpus/code-civil")


def article(number: str) -> str:
    """The text of one article ("1382"), without its heading."""
    found = next(CORPUS.rglob(f"article-{number}.md"))
    return found.read_text(encoding="utf-8").split("\n", 1)[1].strip()


def articles(folder: str, limit: int = 40) -> list[tuple[str, str]]:
    """(number, text) of the articles in one folder of the code, in numeric order."""
    items = []
    for path in (CORPUS / folder).rglob("article-*.md"):
        number = path.stem.removeprefix("article-")
        items.append((number, path.read_text(encoding="utf-8").split("\n", 1)[1].strip()))

    def key(item: tuple[str, str]) -> tuple[int, str]:
        digits = re.match(r"\d+", item[0])
        return (int(digits.group()) if digits else 0, item[0])

    return sorted(items, key=key)[:limit]


def _latin1(text: str) -> str:
    # The PDF core fonts are Latin-1: keep the French accents, spell out the rest.
    for a, b in (("œ", "oe"), ("Œ", "OE"), ("’", "'"), ("…", "..."), ("–", "-"), ("—", "-")):
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def build_pdf(
    path: Path, pages: list[list[tuple[str, str]]], *, password: str | None = None
) -> Path:
    """One PDF page per item of `pages`, each a list of (article number, text)."""
    pdf = FPDF()
    if password is not None:
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    pdf.set_auto_page_break(False)
    for page in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        for number, text in page:
            pdf.set_font("Helvetica", style="B", size=11)
            pdf.multi_cell(0, 6, _latin1(f"Article {number}"), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", size=10)
            pdf.multi_cell(0, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))
    return path


def build_docx(path: Path, items: list[tuple[str, str]]) -> Path:
    doc = Document()
    doc.add_heading("Extraits du Code civil", level=1)
    for number, text in items:
        doc.add_paragraph(f"Article {number}")
        doc.add_paragraph(text)
    doc.save(str(path))
    return path


def corrupt_pdf(path: Path) -> Path:
    """A PDF header followed by garbage: no parser can open it."""
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n")
    return path


def planted_pdf(path: Path, planted: str, page: int, *, pages: int = 4) -> Path:
    """A `pages`-page PDF of the property articles, with article `planted` (a tort
    article) alone on page `page` (1-based) — its page is known exactly."""
    filler = articles("livre-ii/titre-ii", limit=pages * 3)
    layout = [filler[i * 3 : i * 3 + 3] for i in range(pages)]
    layout[page - 1] = [(planted, article(planted))]
    return build_pdf(path, layout)
