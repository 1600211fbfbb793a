"""OCR of a page image with the Tesseract command line (no shell, no temp files).

Used by the PDF extractor for pages without a text layer. Tesseract is a system package
(Debian `tesseract-ocr` + `tesseract-ocr-fra`, Homebrew `tesseract` + `tesseract-lang`),
so it may be missing: `find_tesseract` says so and the page is kept, flagged with
NOTE_NOT_INSTALLED, never dropped.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass

from PIL import Image

NOTE_NOT_INSTALLED = "no text, OCR not installed"
NOTE_DISABLED = "no text, OCR disabled"
NOTE_NOTHING_FOUND = "no text found by OCR"
NOTE_FAILED = "no text, OCR failed"

DEFAULT_LANGUAGES = "fra+eng"
DEFAULT_PAGE_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Tesseract:
    binary: str  # absolute path, resolved once per document
    languages: str  # e.g. "fra+eng", restricted to the installed ones


class OcrError(Exception):
    """One page could not be OCR'd (the document goes on)."""


def find_tesseract(
    command: str = "tesseract", languages: str = DEFAULT_LANGUAGES
) -> Tesseract | None:
    """The Tesseract to use, or None when the binary is not on PATH / not executable.

    Languages that are not installed are dropped (with fra missing, eng still reads most
    of a French page); with none of them installed Tesseract's default is used."""
    binary = shutil.which(command)
    if binary is None:
        return None
    try:
        listed = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    installed = {line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()}
    wanted = [lang for lang in languages.split("+") if lang in installed]
    return Tesseract(binary=binary, languages="+".join(wanted))


def ocr_image(
    tesseract: Tesseract, image: Image.Image, *, timeout_s: float = DEFAULT_PAGE_TIMEOUT_S
) -> str:
    """The text Tesseract reads on `image` (page segmentation: automatic)."""
    buffer = io.BytesIO()
    # PNG: Leptonica reads it from stdin everywhere; uncompressed PNM is not always built in.
    image.save(buffer, format="PNG", compress_level=1)
    args = [tesseract.binary, "stdin", "stdout", "--psm", "3"]
    if tesseract.languages:
        args += ["-l", tesseract.languages]
    # One thread per Tesseract: pages are OCR'd one at a time and the machine is shared;
    # OpenMP's default (all cores) is slower overall on small machines.
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    try:
        done = subprocess.run(
            args,
            input=buffer.getvalue(),
            capture_output=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OcrError(f"tesseract took more than {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise OcrError(f"tesseract could not run: {exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise OcrError(f"tesseract exited with {done.returncode}: {' '.join(tail)}")
    return done.stdout.decode("utf-8", "replace")
