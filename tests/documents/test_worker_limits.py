"""The extraction worker as a process: a wall-clock timeout that kills it and its
children, a memory limit that ends in a typed error, cancellation that leaves nothing
behind, a worker that dies, and progress that arrives while it still works."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from documents.builders import article_blocks, build_pdf, build_scanned_pdf, corpus_articles
from legal_assistant.documents.errors import DocumentError
from legal_assistant.documents.extract import OcrOptions, extract_document

WORKER_MARK = "legal_assistant.documents.extract_worker"


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(marker in part for part in cmdline):
            found.append(proc)
    return found


async def _wait_gone(marker: str, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not [p for p in _processes_with(marker) if p.status() != psutil.STATUS_ZOMBIE]:
            return
        await asyncio.sleep(0.05)  # polling a condition with a deadline
    raise AssertionError(f"processes still running: {_processes_with(marker)}")


def _ocr_running(fake: Path) -> bool:
    # The OCR call itself, not the short-lived `--list-langs` probe before it.
    return any("stdin" in p.cmdline() for p in _processes_with(str(fake)))


async def _wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(what)
        await asyncio.sleep(0.05)  # polling a condition with a deadline


def _hanging_tesseract(tmp_path: Path) -> Path:
    """Stands in for a Tesseract that never finishes a page (a pathological image)."""
    fake = tmp_path / "hanging-tesseract"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--list-langs" ]; then echo "List of languages:"; echo fra;'
        " exit 0; fi\nsleep 600\n"  # no exec: this shell, named by its path, stays
    )
    fake.chmod(0o755)
    return fake


async def test_wall_timeout_kills_the_worker_and_its_tesseract(tmp_path: Path) -> None:
    fake = _hanging_tesseract(tmp_path)
    path = build_scanned_pdf(tmp_path / "scan.pdf", [["Une page scannée."]])
    started = time.monotonic()
    with pytest.raises(DocumentError) as caught:
        await extract_document(
            path, "scan.pdf", timeout_s=3, ocr_options=OcrOptions(command=str(fake))
        )
    assert caught.value.code == "extraction_timeout"
    assert time.monotonic() - started < 60  # not the 600 s of the hung child
    await _wait_gone(str(fake))
    await _wait_gone(str(path))


async def test_memory_limit_ends_in_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("w", encoding="utf-8") as fh:
        line = "Le paiement fait de bonne foi à celui qui est en possession est valable.\n"
        for _ in range(60 * 1024 * 1024 // len(line)):
            fh.write(line)
    with pytest.raises(DocumentError) as caught:
        await extract_document(path, "huge.txt", memory_mb=100)
    assert caught.value.code == "extraction_failed"
    assert "memory" in caught.value.detail


async def test_cancelling_the_caller_kills_the_worker(tmp_path: Path) -> None:
    fake = _hanging_tesseract(tmp_path)
    path = build_scanned_pdf(tmp_path / "scan.pdf", [["Une page."], ["Une autre."]])
    task = asyncio.create_task(
        extract_document(path, "scan.pdf", ocr_options=OcrOptions(command=str(fake)))
    )
    await _wait_for(lambda: _ocr_running(fake), "the worker never reached OCR")
    # Extraction is bulk work: the worker and its Tesseract run at a lower priority.
    niced = min(19, os.nice(0) + 10)
    workers = [p for p in _processes_with(str(path)) if WORKER_MARK in " ".join(p.cmdline())]
    assert workers and all(p.nice() == niced for p in workers)
    ocr = [p for p in _processes_with(str(fake)) if "stdin" in p.cmdline()]
    assert ocr and all(p.nice() == niced for p in ocr)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_gone(str(fake))
    await _wait_gone(str(path))


async def test_a_worker_that_dies_is_a_typed_error(tmp_path: Path) -> None:
    fake = _hanging_tesseract(tmp_path)
    path = build_scanned_pdf(tmp_path / "scan.pdf", [["Une page."]])
    task = asyncio.create_task(
        extract_document(path, "scan.pdf", ocr_options=OcrOptions(command=str(fake)))
    )
    end = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while not workers and time.monotonic() < end:
        workers = [p for p in _processes_with(str(path)) if WORKER_MARK in " ".join(p.cmdline())]
        await asyncio.sleep(0.05)
    assert workers
    os.kill(workers[0].pid, signal.SIGSEGV)  # as if PDFium crashed on the file
    with pytest.raises(DocumentError) as caught:
        await asyncio.wait_for(task, 60)
    assert caught.value.code == "extraction_failed"
    assert str(-signal.SIGSEGV) in caught.value.detail


async def test_progress_arrives_while_the_worker_is_still_working(tmp_path: Path) -> None:
    # Three pages that each take Tesseract a while: when page 1 is reported, the worker is
    # still busy with page 2 (the lines are streamed, not sent at the end).
    pages = [["Première page du jugement."], ["Deuxième page."], ["Troisième page."]]
    path = build_scanned_pdf(tmp_path / "scan.pdf", pages)
    alive_at: dict[int, bool] = {}

    def progress(done: int, total: int) -> None:
        assert total == 3
        alive_at[done] = bool(_processes_with(str(path)))

    extracted = await extract_document(path, "scan.pdf", progress=progress)
    assert sorted(alive_at) == [0, 1, 2, 3]
    assert alive_at[1] is True
    assert [p.source for p in extracted.pages] == ["ocr", "ocr", "ocr"]


async def test_many_documents_in_parallel(tmp_path: Path) -> None:
    articles = corpus_articles(8, max_chars=400)
    paths = [
        build_pdf(tmp_path / f"d{i}.pdf", [article_blocks(articles[i : i + 2])]) for i in range(6)
    ]
    results = await asyncio.gather(*(extract_document(p, p.name) for p in paths))
    for i, extracted in enumerate(results):
        assert articles[i].heading in extracted.pages[0].text


async def test_secrets_in_the_environment_do_not_reach_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell script stands in for Tesseract to show the environment the worker's
    children get (the worker's own is the same: it passes os.environ on)."""
    monkeypatch.setenv("LEGAL_ASSISTANT_API_KEY", "sk-very-secret")
    monkeypatch.setenv("LEGAL_ASSISTANT_SURREALDB_PASSWORD", "db-secret")
    seen = tmp_path / "env.txt"
    fake = tmp_path / "env-tesseract"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--list-langs" ]; then echo "List of languages:"; echo fra;'
        f" exit 0; fi\nenv > {seen}\nexit 1\n"
    )
    fake.chmod(0o755)
    path = build_scanned_pdf(tmp_path / "scan.pdf", [["Une page."]])
    await extract_document(path, "scan.pdf", ocr_options=OcrOptions(command=str(fake)))
    env = seen.read_text()
    assert "PATH=" in env
    assert "secret" not in env
