"""PDF: the text layer of each page with PDFium; pages without one are OCR'd.

Runs inside the extraction worker (PDFium is C code fed untrusted input). A page whose
text layer has almost nothing is rendered: a blank render is a blank page; otherwise the
page is a scan, OCR'd with Tesseract when enabled and installed, else kept with source
"none" and a note saying why — pages are never dropped, so page numbers stay exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from legal_assistant.documents import ocr
from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.model import Page
from legal_assistant.documents.reading import OcrOptions, Reading, clean_text

# Fewer visible characters than this in the text layer: the page may be a scan (a scan
# often carries a stray page number or stamp as text).
MIN_TEXT_LAYER_CHARS = 16
BLANK_LEVEL = 245  # darkest pixel of a low-resolution render above this: blank page
# A PDF can declare any page count and page size: bound both, so a hostile file cannot
# make us loop for hours or render a 200-inch page at 300 dpi.
MAX_PAGES = 20_000
MAX_OCR_PIXELS = 40_000_000  # A4 at 300 dpi is 8.7 million
MAX_PROBE_PIXELS = 250_000
NOTE_BLANK = "blank page"
NOTE_UNREADABLE = "page unreadable"


def read_pdf(path: Path, options: OcrOptions) -> Reading:
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if exc.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise DocumentError("encrypted_pdf", str(exc)) from exc
        raise DocumentError("corrupt_file", str(exc)) from exc
    total = len(document)
    if total == 0 or total > MAX_PAGES:
        document.close()
        if total == 0:
            raise DocumentError("corrupt_file", "the PDF has no pages")
        raise DocumentError("extraction_failed", f"{total} pages (at most {MAX_PAGES})")
    title = _title(document)
    reading = Reading(format="pdf", total=total, paginated=True, pages=iter(()), title=title)
    reading.pages = _pages(document, options, reading.warnings)
    return reading


def _title(document: pdfium.PdfDocument) -> str | None:
    try:
        title = str(document.get_metadata_dict().get("Title") or "").strip()
    except pdfium.PdfiumError:
        return None
    return title or None


def _pages(
    document: pdfium.PdfDocument, options: OcrOptions, warnings: list[str]
) -> Iterator[Page]:
    tesseract: ocr.Tesseract | None = None
    looked_up = False
    unreadable = 0
    total = len(document)
    try:
        for index in range(total):
            number = index + 1
            try:
                page = document[index]
            except pdfium.PdfiumError as exc:
                unreadable += 1
                warnings.append(f"page {number}: {exc}")
                yield Page(number=number, text="", source="none", note=NOTE_UNREADABLE)
                continue
            try:
                text = _text_layer(page)
                if _visible_chars(text) >= MIN_TEXT_LAYER_CHARS or _is_blank(page):
                    note = NOTE_BLANK if not text else None
                    yield Page(number=number, text=text, source="text", note=note)
                    continue
                if not options.enabled:
                    yield _no_text(number, text, ocr.NOTE_DISABLED)
                    continue
                if not looked_up:  # once per document, only if a scan is met
                    tesseract = ocr.find_tesseract(options.command, options.languages)
                    looked_up = True
                if tesseract is None:
                    yield _no_text(number, text, ocr.NOTE_NOT_INSTALLED)
                    continue
                yield _ocr_page(page, number, text, tesseract, options, warnings)
            finally:
                page.close()
    finally:
        document.close()
    if unreadable == total:
        raise DocumentError("corrupt_file", "no page of the PDF could be read")


def _text_layer(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        return clean_text(textpage.get_text_range())
    finally:
        textpage.close()


def _visible_chars(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _is_blank(page: pdfium.PdfPage) -> bool:
    # 18 dpi is enough to see ink.
    bitmap = page.render(scale=_scale(page, 0.25, MAX_PROBE_PIXELS), grayscale=True)
    try:
        lowest, _ = bitmap.to_pil().convert("L").getextrema()
    finally:
        bitmap.close()
    return bool(lowest > BLANK_LEVEL)


def _scale(page: pdfium.PdfPage, wanted: float, max_pixels: int) -> float:
    width, height = (float(v) for v in page.get_size())  # points
    area = max(1.0, width * height)
    return min(wanted, float((max_pixels / area) ** 0.5))


def _no_text(number: int, text_layer: str, note: str) -> Page:
    return Page(number=number, text=text_layer, source="none", note=note)


def _ocr_page(
    page: pdfium.PdfPage,
    number: int,
    text_layer: str,
    tesseract: ocr.Tesseract,
    options: OcrOptions,
    warnings: list[str],
) -> Page:
    bitmap = page.render(scale=_scale(page, options.dpi / 72, MAX_OCR_PIXELS), grayscale=True)
    try:
        image = bitmap.to_pil()
        try:
            found = clean_text(ocr.ocr_image(tesseract, image, timeout_s=options.page_timeout_s))
        except ocr.OcrError as exc:
            warnings.append(f"page {number}: {exc}")
            return _no_text(number, text_layer, f"{ocr.NOTE_FAILED} ({exc})")
    finally:
        bitmap.close()
    if _visible_chars(found) <= _visible_chars(text_layer):
        if text_layer:
            return Page(number=number, text=text_layer, source="text")
        return _no_text(number, "", ocr.NOTE_NOTHING_FOUND)
    return Page(number=number, text=found, source="ocr")
