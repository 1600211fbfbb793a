"""Extraction speed: pages/s of `extract_document` (the worker process, as the backend
runs it) on a 300-page text PDF built from the Code civil, against PDFium read in-process
(the floor: same library, no process, no JSON lines); DOCX likewise; passages/s of
`split_passages`; OCR seconds per scanned page; and how fast hostile files are refused.

    uv run python benchmarks/extract.py [--pages 300] [--runs 3]

Runs alternate (worker, in-process, worker, ...) because this 2-core machine is noisy;
medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from documents.builders import (  # noqa: E402  (tests/ put on sys.path above)
    article_blocks,
    build_corrupt_pdf,
    build_docx,
    build_encrypted_pdf,
    build_pdf,
    build_png,
    build_scanned_pdf,
    build_zip_bomb_docx,
    corpus_articles,
)
from legal_assistant.documents.errors import DocumentError  # noqa: E402
from legal_assistant.documents.extract import extract_document  # noqa: E402
from legal_assistant.documents.extract_worker import open_reading  # noqa: E402
from legal_assistant.documents.model import Extracted  # noqa: E402
from legal_assistant.documents.passages import split_passages  # noqa: E402
from legal_assistant.documents.reading import OcrOptions  # noqa: E402


def _pdf_pages(count: int) -> list[list[str]]:
    articles = corpus_articles(count * 2, max_chars=700)
    return [article_blocks(articles[2 * i : 2 * i + 2]) for i in range(count)]


def _in_process(path: Path, fmt: str) -> Extracted:
    reading = open_reading(path, fmt, OcrOptions())
    pages = list(reading.pages)
    return Extracted(format=fmt, pages=pages, paginated=reading.paginated)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _row(name: str, a: str, b: str, c: str) -> None:
    print(f"{name:<40}{a:>14}{b:>14}{c:>12}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="la-bench-extract-"))

    pdf = build_pdf(work / "code.pdf", _pdf_pages(args.pages))
    docx = build_docx(work / "code.docx", article_blocks(corpus_articles(args.pages * 2)))
    worker_s: dict[str, list[float]] = {"pdf": [], "docx": []}
    local_s: dict[str, list[float]] = {"pdf": [], "docx": []}
    extracted: dict[str, Extracted] = {}
    for _ in range(args.runs):
        for fmt, path in (("pdf", pdf), ("docx", docx)):
            seconds, result = _timed(lambda p=path: asyncio.run(extract_document(p, p.name)))
            worker_s[fmt].append(seconds)
            assert isinstance(result, Extracted)
            extracted[fmt] = result
            local_s[fmt].append(_timed(lambda p=path, f=fmt: _in_process(p, f))[0])

    print(f"extraction, median of {args.runs} runs (s)")
    _row("measure", "in-process", "worker", "ratio")
    for fmt in ("pdf", "docx"):
        w, loc = statistics.median(worker_s[fmt]), statistics.median(local_s[fmt])
        pages = len(extracted[fmt].pages)
        size_kb = (pdf if fmt == "pdf" else docx).stat().st_size // 1024
        _row(f"{fmt} ({pages} page(s), {size_kb} KB)", f"{loc:.3f}", f"{w:.3f}", f"{w / loc:.2f}x")
    pdf_rate = len(extracted["pdf"].pages) / statistics.median(worker_s["pdf"])
    print(f"PDF text pages/s through the worker: {pdf_rate:.0f}")

    print("\npassages")
    for fmt, doc in extracted.items():
        seconds, passages = _timed(lambda d=doc: split_passages(d))
        assert isinstance(passages, list)
        labelled = sum(1 for p in passages if p.label)
        print(f"{fmt}: {len(passages)} passages ({labelled} labelled) in {seconds:.3f} s "
              f"= {len(passages) / seconds:.0f} passages/s")  # fmt: skip

    scanned = build_scanned_pdf(work / "scan.pdf", _pdf_pages(3))
    seconds, result = _timed(lambda: asyncio.run(extract_document(scanned, "scan.pdf")))
    assert isinstance(result, Extracted) and all(p.source == "ocr" for p in result.pages)
    print(f"\nOCR (Tesseract fra+eng, 300 dpi render, 1 thread): {seconds / 3:.2f} s/page")

    print("\nhostile files: time to the typed error (s)")
    hostile = {
        "encrypted.pdf": build_encrypted_pdf(work / "encrypted.pdf", _pdf_pages(1)),
        "corrupt.pdf": build_corrupt_pdf(work / "corrupt.pdf"),
        "png-named.pdf": build_png(work / "png-named.pdf"),
        "bomb.docx": build_zip_bomb_docx(work / "bomb.docx", inflated_mb=1024),
    }
    for name, path in hostile.items():
        start = time.perf_counter()
        try:
            asyncio.run(extract_document(path, name))
            code = "(no error!)"
        except DocumentError as exc:
            code = exc.code
        print(f"{name:<20}{code:<20}{time.perf_counter() - start:.2f}")


if __name__ == "__main__":
    main()
