"""Bad input: every hostile or broken file ends in a typed DocumentError (code + FR/EN
message) from the worker, never a crash or a hang of the caller."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import pytest

from documents.builders import (
    article_blocks,
    build_corrupt_pdf,
    build_docx,
    build_encrypted_pdf,
    build_pdf,
    build_png,
    build_zip_bomb_docx,
    corpus_articles,
)
from legal_assistant.documents import sniff
from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.extract import extract_document
from legal_assistant.errors import LegalAssistantError

# Generous: these answer in well under a second, but the machine is shared.
DEADLINE_S = 120


async def _error(path: Path, filename: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        await asyncio.wait_for(extract_document(path, filename), DEADLINE_S)
    error = caught.value
    assert isinstance(error, LegalAssistantError)
    assert (
        error.message("fr") and error.message("en") and error.message("fr") != error.message("en")
    )
    return error


def _pages() -> list[list[str]]:
    return [article_blocks(corpus_articles(2, max_chars=400))]


async def test_encrypted_pdf(tmp_path: Path) -> None:
    error = await _error(build_encrypted_pdf(tmp_path / "e.pdf", _pages()), "e.pdf")
    assert error.code == "encrypted_pdf"
    assert "mot de passe" in error.message("fr")


async def test_corrupt_pdf(tmp_path: Path) -> None:
    error = await _error(build_corrupt_pdf(tmp_path / "c.pdf"), "c.pdf")
    assert error.code == "corrupt_file"


async def test_truncated_pdf_is_repaired_or_refused_never_a_crash(tmp_path: Path) -> None:
    whole = build_pdf(tmp_path / "w.pdf", _pages() * 3)
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    try:
        extracted = await asyncio.wait_for(extract_document(cut, "cut.pdf"), DEADLINE_S)
    except DocumentError as exc:
        assert exc.code == "corrupt_file"
    else:  # PDFium rebuilds what it can: the pages it kept are real pages
        assert 1 <= len(extracted.pages) <= 3


async def test_png_renamed_pdf(tmp_path: Path) -> None:
    error = await _error(build_png(tmp_path / "scan.pdf"), "scan.pdf")
    assert error.code == "content_mismatch"
    assert "PNG" in error.detail


async def test_docx_renamed_pdf_and_pdf_renamed_docx(tmp_path: Path) -> None:
    docx = build_docx(tmp_path / "a.docx", ["Bonjour"])
    assert (await _error(docx, "a.pdf")).code == "content_mismatch"
    pdf = build_pdf(tmp_path / "b.pdf", _pages())
    assert (await _error(pdf, "b.docx")).code == "content_mismatch"


async def test_plain_zip_named_docx(tmp_path: Path) -> None:
    path = tmp_path / "z.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "pas un document Word")
    assert (await _error(path, "z.docx")).code == "content_mismatch"


async def test_binary_named_txt(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_bytes(bytes(range(256)) * 8)
    assert (await _error(path, "b.txt")).code == "content_mismatch"


async def test_zip_bomb_docx_is_refused_before_parsing(tmp_path: Path) -> None:
    path = build_zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=64)
    assert path.stat().st_size < 1024 * 1024  # 64 MB inflated from well under 1 MB
    error = await _error(path, "bomb.docx")
    assert error.code == "zip_bomb"


def test_zip_limits_leave_real_documents_alone(tmp_path: Path) -> None:
    blocks = article_blocks(corpus_articles(300))
    sniff.check_zip(build_docx(tmp_path / "big.docx", blocks))  # no error


async def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "vide.pdf"
    path.write_bytes(b"")
    assert (await _error(path, "vide.pdf")).code == "empty_file"


async def test_docx_without_text(tmp_path: Path) -> None:
    path = build_docx(tmp_path / "blank.docx", ["", "   "])
    assert (await _error(path, "blank.docx")).code == "empty_file"


async def test_unsupported_extension_is_refused_without_a_worker(tmp_path: Path) -> None:
    path = tmp_path / "run.exe"
    path.write_bytes(b"MZ\x90\x00")
    with pytest.raises(DocumentError) as caught:
        await extract_document(path, "run.exe")
    assert caught.value.code == "unsupported_type"
    assert caught.value.http_status == 415


def test_detect_format_for_the_upload_route(tmp_path: Path) -> None:
    pdf = build_pdf(tmp_path / "x.pdf", _pages())
    assert sniff.detect_format(pdf, "Jugement du 3 mai.PDF") == "pdf"
    assert sniff.format_from_name("notes.markdown") == "md"
    with pytest.raises(DocumentError) as caught:
        sniff.format_from_name("archive.zip")
    assert caught.value.code == "unsupported_type"
    with pytest.raises(DocumentError) as caught:
        sniff.detect_format(pdf, "x.odt")
    assert caught.value.code == "content_mismatch"


async def test_text_quoting_a_pdf_header_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("Un PDF commence par %PDF-1.7 suivi de sa version.", encoding="utf-8")
    extracted = await extract_document(path, "note.md")
    assert "%PDF-1.7" in extracted.pages[0].text


async def test_a_huge_page_is_rendered_within_bounds(tmp_path: Path) -> None:
    # A 5 m x 5 m scanned page: rendered at 300 dpi it would be 3.5 billion pixels.
    from reportlab.pdfgen import canvas

    path = tmp_path / "huge.pdf"
    pdf = canvas.Canvas(str(path), pagesize=(14_000, 14_000))
    pdf.setFont("Helvetica", 900)
    pdf.drawString(500, 7000, "x")  # a near-empty text layer with ink: rendered for OCR
    pdf.showPage()
    pdf.save()
    extracted = await asyncio.wait_for(extract_document(path, "huge.pdf"), DEADLINE_S)
    assert len(extracted.pages) == 1
