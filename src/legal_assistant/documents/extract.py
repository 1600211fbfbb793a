"""Extraction, as the backend sees it: `extract_document` runs a worker process and gives
back an `Extracted` (the pages), or raises a `DocumentError`.

Why a process: parsers of untrusted files (PDFium is C, the zip/XML parsers inflate in
memory) can hang, blow up or crash. The worker (`extract_worker.py`) runs under memory and
CPU limits, in its own session (so Tesseract children die with it), and streams one JSON
line per page; here we enforce the wall-clock timeout, report progress per page, and turn
every way it can end (error line, signal, limit, garbage) into a typed error. The
backend's event loop only ever reads lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.model import Extracted, Page
from legal_assistant.documents.reading import OcrOptions
from legal_assistant.documents.sniff import format_from_name

if TYPE_CHECKING:
    from legal_assistant.config import Settings

__all__ = ["DocumentError", "OcrOptions", "extract_document"]

# A scanned 300-page PDF OCRs at ~2-4 s a page here; text PDFs take well under a minute.
DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_NICE = 10  # as Settings.extraction_nice
# One JSON line carries a page; a non-PDF document is one page (up to the upload limit).
_MAX_LINE_BYTES = 512 * 1024 * 1024
_STDERR_TAIL = 20

Progress = Callable[[int, int], None]


async def extract_document(
    path: Path,
    filename: str,
    *,
    ocr: bool = True,
    progress: Progress | None = None,
    timeout_s: float | None = None,
    memory_mb: int | None = None,
    ocr_options: OcrOptions | None = None,
    settings: Settings | None = None,
) -> Extracted:
    """Extract `path` (named `filename` by the user: its extension picks the format, the
    content must agree) in a worker process.

    `progress(done_pages, total_pages)` is called with (0, N) once the document is open,
    then after each page. `ocr=False` keeps pages without a text layer with source
    "none". Limits and OCR options come from the arguments, else from `settings`
    (extraction_timeout_s, extraction_memory_mb, ocr_enabled, tesseract_command,
    ocr_languages, ocr_page_timeout_s), else from the defaults here.
    Raises DocumentError (see documents/errors.py for the codes)."""
    format_from_name(filename)  # unsupported_type without starting a process
    if timeout_s is None:
        timeout_s = settings.extraction_timeout_s if settings else DEFAULT_TIMEOUT_S
    if memory_mb is None:
        memory_mb = settings.extraction_memory_mb if settings else DEFAULT_MEMORY_MB
    options = ocr_options or (ocr_options_from(settings) if settings else OcrOptions())
    if not ocr:
        options = OcrOptions(**{**asdict(options), "enabled": False})
    request = {
        "path": str(path),  # the worker runs in our working directory
        "filename": filename,
        "ocr": asdict(options),
        "memory_mb": memory_mb,
        "cpu_s": max(1, int(timeout_s)),
        # Bulk work: the worker yields the CPU to searches and the engines (docs/dossiers.md).
        "nice": settings.extraction_nice if settings else DEFAULT_NICE,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legal_assistant.documents.extract_worker",
        json.dumps(request),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=_MAX_LINE_BYTES,
        start_new_session=True,
        env=_worker_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    stderr_task = asyncio.create_task(_read_stderr(process.stderr, stderr_tail))
    collector = _Collector(progress)
    try:
        try:
            async with asyncio.timeout(timeout_s):
                while not collector.finished:
                    line = await process.stdout.readline()
                    if not line:
                        break
                    collector.feed(line)
                await process.wait()
        except TimeoutError:
            raise DocumentError(
                "extraction_timeout", f"no result after {timeout_s:.0f} s"
            ) from None
        except (ValueError, asyncio.LimitOverrunError) as exc:  # a line over the limit
            raise DocumentError("extraction_failed", f"worker output too large: {exc}") from None
    finally:
        if process.returncode is None:
            _kill_session(process.pid)
            await process.wait()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(stderr_task, timeout=5)
    return collector.result(process.returncode, list(stderr_tail))


def ocr_options_from(settings: Settings) -> OcrOptions:
    return OcrOptions(
        enabled=settings.ocr_enabled,
        command=settings.tesseract_command,
        languages=settings.ocr_languages,
        page_timeout_s=settings.ocr_page_timeout_s,
    )


# What the worker and Tesseract need from our environment; nothing else (API keys,
# database passwords) reaches a process that parses hostile files.
_ENV_KEEP = frozenset(
    {"PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "PYTHONPATH", "VIRTUAL_ENV",
     "TESSDATA_PREFIX", "OMP_THREAD_LIMIT", "SYSTEMROOT"}
)  # fmt: skip


def _worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith("LC_")}


class _Collector:
    """Folds the worker's JSON lines into an Extracted (or the error it reported)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._header: dict[str, Any] | None = None
        self._pages: list[Page] = []
        self._warnings: list[str] = []
        self._error: DocumentError | None = None
        self.finished = False

    def feed(self, line: bytes) -> None:
        try:
            event = json.loads(line)
            kind = event["event"]
        except (ValueError, KeyError, TypeError):
            raise DocumentError("extraction_failed", "unreadable worker output") from None
        if kind == "start":
            self._header = event
            self._report(0)
        elif kind == "page":
            if event.get("source") not in ("text", "ocr", "none"):
                raise DocumentError("extraction_failed", "unreadable worker output")
            self._pages.append(
                Page(
                    number=int(event["number"]),
                    text=str(event["text"]),
                    source=event["source"],
                    note=event.get("note"),
                    headings=tuple(int(h) for h in event.get("headings", ())),
                )
            )
            self._report(len(self._pages))
        elif kind == "done":
            self._warnings = [str(w) for w in event.get("warnings", [])]
            self.finished = True
        elif kind == "error":
            self._error = DocumentError(str(event["code"]), str(event.get("detail", "")))
            self.finished = True

    def _report(self, done: int) -> None:
        if self._progress is not None and self._header is not None:
            self._progress(done, int(self._header["total"]))

    def result(self, returncode: int | None, stderr_tail: list[str]) -> Extracted:
        if self._error is not None:
            raise self._error
        if not self.finished or self._header is None:
            if returncode == -signal.SIGXCPU:  # RLIMIT_CPU's soft limit
                raise DocumentError("extraction_timeout", "CPU time limit reached")
            tail = " | ".join(stderr_tail[-3:])
            raise DocumentError(
                "extraction_failed", f"worker exited with {returncode}: {tail}".rstrip(": ")
            )
        return Extracted(
            format=str(self._header["format"]),
            pages=self._pages,
            paginated=bool(self._header["paginated"]),
            title=self._header.get("title"),
            warnings=self._warnings,
        )


async def _read_stderr(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    # Drained continuously: a worker blocked on a full stderr pipe would look hung.
    while True:
        try:
            line = await stream.readline()
        except (ValueError, asyncio.LimitOverrunError):
            continue
        if not line:
            return
        tail.append(line.decode("utf-8", "replace").rstrip())


def _kill_session(pid: int) -> None:
    # The worker leads its own session: its Tesseract children go with it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
