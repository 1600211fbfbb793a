"""What a file really is: its format from its name, checked against its first bytes.

The upload route calls `format_from_name` before storing a byte (415 early on an unknown
extension) and `detect_format` once the file is on disk; the extraction worker calls
`detect_format` again (it never trusts its caller) and `check_zip` before handing a
DOCX/ODT to its parser, because both parsers inflate whole zip members in memory.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.model import SUPPORTED_FORMATS

EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".odt": "odt",
    ".rtf": "rtf",
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
assert set(EXTENSIONS.values()) == set(SUPPORTED_FORMATS)

# Zip limits for DOCX/ODT. A real 1,000-page DOCX has a document.xml of a few tens of MB
# and compresses ~10:1; images dominate big files and barely compress. A zip bomb is
# hundreds of MB or more, at ratios of 100:1 to 1000:1.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_RATIO = 100.0
RATIO_FLOOR_BYTES = 32 * 1024 * 1024  # the ratio only matters above this size
MAX_MEMBERS = 10_000

_SNIFF_BYTES = 8192

# Binary formats someone may rename to a supported extension; named in the error detail.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"BM", "BMP image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Office document (.doc/.xls)"),
    (b"\x7fELF", "executable"),
    (b"MZ", "executable"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
)


def format_from_name(filename: str) -> str:
    """The format a file name claims, or `unsupported_type`."""
    suffix = Path(filename).suffix.lower()
    fmt = EXTENSIONS.get(suffix)
    if fmt is None:
        raise DocumentError("unsupported_type", f"extension {suffix or '(none)'!r}")
    return fmt


def sniff(path: Path) -> str:
    """What the content is: a SUPPORTED_FORMATS value, "text", "zip", or a description of
    another binary format ("PNG image", ...)."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"%PDF-" in head[:1024]:  # the spec tolerates junk before the header
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
        return "rtf"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if _looks_like_text(head):
        return "text"
    return "binary data"


def detect_format(path: Path, filename: str) -> str:
    """The format to extract `path` with: the one its name claims, once its content agrees.

    Raises DocumentError: unsupported_type (name), empty_file (zero bytes),
    content_mismatch (e.g. a PNG named .pdf, a PDF named .docx, binary in a .txt)."""
    claimed = format_from_name(filename)
    if path.stat().st_size == 0:
        raise DocumentError("empty_file", "0 bytes")
    actual = sniff(path)
    if claimed in ("txt", "md", "html"):
        # Judged on the bytes alone: a text about PDFs may well quote "%PDF-".
        with path.open("rb") as fh:
            ok = _looks_like_text(fh.read(_SNIFF_BYTES))
        actual = actual if actual != "text" else "binary data"
    else:
        ok = actual == claimed
    if not ok:
        raise DocumentError(
            "content_mismatch", f"named .{claimed} but the content is {_describe(actual)}"
        )
    return claimed


def check_zip(path: Path) -> None:
    """Refuse a DOCX/ODT whose zip would inflate too much, from its directory alone.

    zipfile never yields more than a member's declared size, so checking the declared
    sizes bounds what python-docx and odfpy can inflate; the worker's memory limit is the
    backstop for anything else."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError("corrupt_file", f"not a readable zip: {exc}") from exc
    if len(members) > MAX_MEMBERS:
        raise DocumentError("zip_bomb", f"{len(members)} members")
    total = sum(m.file_size for m in members)
    compressed = max(1, path.stat().st_size)
    ratio = total / compressed
    if total > MAX_UNCOMPRESSED_BYTES:
        raise DocumentError("zip_bomb", f"{total} bytes uncompressed")
    if total > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
        raise DocumentError("zip_bomb", f"compression ratio {ratio:.0f}:1")


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return "docx"
            if "mimetype" in names:
                info = archive.getinfo("mimetype")
                if info.file_size < 200:
                    mimetype = archive.read(info).decode("ascii", "replace").strip()
                    if mimetype == "application/vnd.oasis.opendocument.text":
                        return "odt"
                    return f"another OpenDocument ({mimetype})"
            if "content.xml" in names:
                return "odt"  # an ODT without its mimetype member still parses
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a damaged zip archive"
    return "zip"


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte-order mark
    if b"\x00" in head:
        return False
    # Control characters other than whitespace mean binary; a truncated multi-byte
    # character at the end of the sample does not.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls <= len(head) // 100


def _describe(actual: str) -> str:
    names = {
        "pdf": "a PDF",
        "docx": "a DOCX",
        "odt": "an ODT",
        "rtf": "an RTF",
        "text": "plain text",
        "zip": "a zip archive",
    }
    return names.get(actual, actual)
