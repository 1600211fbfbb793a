"""The extraction worker: `python -m legal_assistant.documents.extract_worker REQUEST`.

REQUEST is JSON: {"path", "filename", "ocr": OcrOptions fields, "memory_mb", "cpu_s",
"nice"}.
Output, one JSON object per line on the original stdout (anything a library prints goes
to stderr instead):
  {"event": "start", "format", "total", "paginated", "title"}
  {"event": "page", "number", "text", "source", "note"}          (total times)
  {"event": "done", "warnings": [...]}   or   {"event": "error", "code", "detail"}
Limits are set on itself before any untrusted byte is parsed: address space (memory_mb),
CPU time (cpu_s; SIGXCPU, then SIGKILL 5 s later), no core dumps, and a lower scheduling
priority (nice: extraction is bulk work, a search must not wait for it). Children
(Tesseract) inherit them."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.reading import OcrOptions, Reading
from legal_assistant.documents.sniff import detect_format

Send = Callable[[dict[str, Any]], None]


def open_reading(path: Path, fmt: str, options: OcrOptions) -> Reading:
    """The reader for `fmt` (imports are lazy: a DOCX never loads PDFium)."""
    if fmt == "pdf":
        from legal_assistant.documents.extract_pdf import read_pdf

        return read_pdf(path, options)
    if fmt in ("docx", "odt"):
        from legal_assistant.documents import extract_office

        return extract_office.read_docx(path) if fmt == "docx" else extract_office.read_odt(path)
    from legal_assistant.documents import extract_markup

    if fmt == "rtf":
        return extract_markup.read_rtf(path)
    if fmt == "html":
        return extract_markup.read_html(path)
    return extract_markup.read_plain(path, fmt)


def run(request: dict[str, Any], send: Send) -> None:
    """Extract one document, reporting through `send`; errors become an error event."""
    try:
        path = Path(request["path"])
        fmt = detect_format(path, str(request["filename"]))
        reading = open_reading(path, fmt, OcrOptions(**request.get("ocr", {})))
        send(
            {
                "event": "start",
                "format": reading.format,
                "total": reading.total,
                "paginated": reading.paginated,
                "title": reading.title,
            }
        )
        has_text = False
        for page in reading.pages:
            has_text = has_text or bool(page.text.strip())
            send(
                {
                    "event": "page",
                    "number": page.number,
                    "text": page.text,
                    "source": page.source,
                    "note": page.note,
                    "headings": list(page.headings),
                }
            )
        # A PDF of scans without OCR is kept (its pages are flagged); a DOCX with no text
        # at all has nothing to search or cite.
        if not has_text and not reading.paginated:
            raise DocumentError("empty_file", "no text in the document")
        send({"event": "done", "warnings": reading.warnings})
    except DocumentError as exc:
        send({"event": "error", "code": exc.code, "detail": exc.detail})
    except MemoryError:
        send({"event": "error", "code": "extraction_failed", "detail": "memory limit reached"})
    except RecursionError:
        send({"event": "error", "code": "corrupt_file", "detail": "structure nested too deeply"})
    except Exception as exc:  # a parser bug on a hostile file: a typed error, not a crash
        detail = f"{type(exc).__name__}: {exc}"[:500]
        send({"event": "error", "code": "extraction_failed", "detail": detail})


def apply_limits(memory_mb: int, cpu_s: int) -> None:
    import resource

    limits = [
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, cpu_s, cpu_s + 5),
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024, memory_mb * 1024 * 1024),
    ]
    for which, soft, hard in limits:
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            pass  # e.g. macOS refuses RLIMIT_AS: the wall timeout still bounds the worker


def _protocol_stream() -> BinaryIO:
    # Keep the real stdout for the protocol and point fd 1 at stderr, so a library that
    # prints cannot corrupt the JSON lines.
    stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return stream


def main(argv: list[str]) -> int:
    out = _protocol_stream()

    def send(event: dict[str, Any]) -> None:
        out.write(json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()

    try:
        request = json.loads(argv[1])
    except (IndexError, ValueError):
        send({"event": "error", "code": "extraction_failed", "detail": "bad worker request"})
        return 2
    apply_limits(int(request.get("memory_mb", 2048)), int(request.get("cpu_s", 1800)))
    with contextlib.suppress(OSError):
        os.nice(max(0, min(19, int(request.get("nice", 0)))))
    run(request, send)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
