"""Pages without a text layer: OCR'd with the real Tesseract (fra+eng); without
Tesseract (missing from PATH, or a command that does not exist) the page is kept with
source "none" and the note the UI shows; a blank page is not mistaken for a scan."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

import pytest

from documents.builders import article_blocks, build_pdf, build_scanned_pdf, corpus_articles
from legal_assistant.config import Settings
from legal_assistant.documents import ocr
from legal_assistant.documents.extract import OcrOptions, extract_document

SCANNED = [
    "Article 1382",
    "Tout fait quelconque de l'homme, qui cause à autrui un dommage, oblige celui par la "
    "faute duquel il est arrivé à le réparer.",
    "La clause de médiation préalable est obligatoire.",
]


def _words(text: str) -> set[str]:
    folded = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in folded if ch.isalnum() or ch.isspace())
    return set(plain.split())


def _mixed_pdf(path: Path) -> Path:
    articles = corpus_articles(4, max_chars=500)
    pages = [article_blocks(articles[:2]), SCANNED, article_blocks(articles[2:])]
    return build_pdf(path, pages, scanned=[2])


def test_tesseract_with_french_is_installed_here() -> None:
    # The OCR tests below are only meaningful with the real binary and fra data.
    found = ocr.find_tesseract()
    assert found is not None and "fra" in found.languages.split("+")


async def test_scanned_page_is_ocrd_and_the_text_pages_are_not(tmp_path: Path) -> None:
    extracted = await extract_document(_mixed_pdf(tmp_path / "mixed.pdf"), "mixed.pdf")
    assert [p.source for p in extracted.pages] == ["text", "ocr", "text"]
    scanned = extracted.pages[1]
    wanted = _words(" ".join(SCANNED))
    found = _words(scanned.text)
    assert len(wanted & found) >= 0.9 * len(wanted), sorted(wanted - found)
    assert {"médiation", "préalable", "obligatoire", "réparer"} <= {
        w for w in scanned.text.lower().replace(".", " ").split()
    }
    assert "1382" in scanned.text


async def test_image_only_pdf_from_a_scanner(tmp_path: Path) -> None:
    path = build_scanned_pdf(tmp_path / "scan.pdf", [SCANNED, ["Page deux du jugement."]])
    extracted = await extract_document(path, "scan.pdf")
    assert [p.source for p in extracted.pages] == ["ocr", "ocr"]
    assert "médiation" in extracted.pages[0].text
    assert "jugement" in extracted.pages[1].text


async def test_missing_tesseract_on_path_keeps_the_page_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))  # the worker inherits it
    assert shutil.which("tesseract") is None

    extracted = await extract_document(_mixed_pdf(tmp_path / "m.pdf"), "m.pdf")

    assert [p.source for p in extracted.pages] == ["text", "none", "text"]
    page = extracted.pages[1]
    assert page.note == ocr.NOTE_NOT_INSTALLED == "no text, OCR not installed"
    assert page.text == ""


async def test_missing_tesseract_command_setting(tmp_path: Path) -> None:
    options = OcrOptions(command=str(tmp_path / "no-such-tesseract"))
    path = _mixed_pdf(tmp_path / "m.pdf")
    extracted = await extract_document(path, "m.pdf", ocr_options=options)
    assert extracted.pages[1].source == "none"
    assert extracted.pages[1].note == ocr.NOTE_NOT_INSTALLED


async def test_ocr_disabled(tmp_path: Path) -> None:
    extracted = await extract_document(_mixed_pdf(tmp_path / "m.pdf"), "m.pdf", ocr=False)
    assert extracted.pages[1].source == "none"
    assert extracted.pages[1].note == ocr.NOTE_DISABLED


async def test_tesseract_that_fails_flags_the_page_and_goes_on(tmp_path: Path) -> None:
    """Stands in for a broken Tesseract install: a script that lists languages, then
    exits 1 on the OCR call."""
    fake = tmp_path / "tesseract"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--list-langs" ]; then echo "List of languages:"; echo fra;'
        ' exit 0; fi\necho "Error, cannot read input" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    options = OcrOptions(command=str(fake))
    extracted = await extract_document(_mixed_pdf(tmp_path / "m.pdf"), "m.pdf", ocr_options=options)
    page = extracted.pages[1]
    assert page.source == "none"
    assert page.note is not None and page.note.startswith(ocr.NOTE_FAILED)
    assert any(w.startswith("page 2:") for w in extracted.warnings)
    assert [p.source for p in extracted.pages] == ["text", "none", "text"]


async def test_settings_choose_the_tesseract_and_can_turn_ocr_off(
    tmp_path: Path, settings: Settings
) -> None:
    path = _mixed_pdf(tmp_path / "m.pdf")
    missing = settings.model_copy(update={"tesseract_command": str(tmp_path / "nope")})
    extracted = await extract_document(path, "m.pdf", settings=missing)
    assert extracted.pages[1].note == ocr.NOTE_NOT_INSTALLED
    off = settings.model_copy(update={"ocr_enabled": False})
    extracted = await extract_document(path, "m.pdf", settings=off)
    assert extracted.pages[1].note == ocr.NOTE_DISABLED
    extracted = await extract_document(path, "m.pdf", settings=settings)
    assert extracted.pages[1].source == "ocr"
