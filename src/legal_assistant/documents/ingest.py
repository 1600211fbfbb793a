"""The ingestion service: uploaded files become searchable passages, in the background.

A job per document: extract (a worker process, documents/extract.py) → passages →
embed (batches, through the supervised embedding engine) → index (atomic). The document
row is the job's state, so nothing is lost across a restart: at start-up, a job left
`queued`/`extracting`/`embedding` is run again from the start (or failed with
`file_missing` if its file is gone), and a dossier whose vectors came from another
embedding model is re-indexed rather than mixing vectors of two models.

Concurrency: `ingest_workers` workers take documents from one FIFO queue; each job runs
as its own task so deleting a document (or its dossier) cancels just that job. Only the
worker running a job writes its row after the upload created it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import numpy as np

from legal_assistant.config import Settings
from legal_assistant.documents.extract import extract_document
from legal_assistant.documents.files import DossierFiles, ReceivedFile
from legal_assistant.documents.jobs import DossierEvents, document_event
from legal_assistant.documents.library import DossierLibrary, call
from legal_assistant.documents.model import Extracted, Passage
from legal_assistant.errors import LegalAssistantError
from legal_assistant.judgments.labels import read_document
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.store import Database, dossiers, judgments, new_id
from legal_assistant.store import documents as docs

log = logging.getLogger("legal_assistant")

# Share of the job's progress bar each stage fills (embedding dominates on a CPU).
_EXTRACT_SHARE = 0.3
_EMBED_SHARE = 0.65
_PROGRESS_INTERVAL_S = 0.2  # at most this often a row update / event per document


def _error_payload(err: LegalAssistantError) -> dict[str, Any]:
    return {
        "code": err.code,
        "message_fr": err.message("fr"),
        "message_en": err.message("en"),
        "detail": err.detail[:500],
    }


class IngestionService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        library: DossierLibrary,
        files: DossierFiles,
        events: DossierEvents | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.library = library
        self.files = files
        self.events = events or DossierEvents()
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._jobs: dict[str, asyncio.Task[None]] = {}  # document id -> running job
        self._dossier_locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Clean up after the previous run, queue what it left unfinished, start workers."""
        removed = self.files.clear_incoming()
        if removed:
            log.info("Removed %d partial upload(s) left by the previous run", removed)
        await self._reindex_changed_models()
        for doc in await docs.unfinished_documents(self.db):
            if not self.files.file_path(doc.dossier_id, doc.id).is_file():
                await self._fail(doc.dossier_id, doc.id, LegalAssistantError("file_missing"))
                continue
            await docs.requeue(self.db, [doc.id])
            log.info("Resuming the ingestion of %s (%s)", doc.filename, doc.id)
            self._queue.put_nowait((doc.dossier_id, doc.id))
        for i in range(self.settings.ingest_workers):
            self._workers.append(asyncio.create_task(self._worker(), name=f"ingest-{i}"))

    async def stop(self) -> None:
        """Cancel the workers and their jobs; unfinished documents keep their status and
        are resumed by the next start."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()

    async def aclose(self) -> None:
        """Stop the jobs, then close the indexes (the app's shutdown)."""
        await self.stop()
        await self.library.aclose()

    @classmethod
    async def open(
        cls, settings: Settings, db: Database, supervisor: Supervisor
    ) -> IngestionService:
        """The service with its files, indexes and embedder, started (the app's start-up)."""
        files = DossierFiles(settings.data_dir)
        service = cls(settings, db, DossierLibrary(settings, db, supervisor, files), files)
        await service.start()
        return service

    async def _reindex_changed_models(self) -> None:
        model, dimension = self.library.embedder.model_id, self.library.embedder.dimension
        for dossier in await dossiers.list_dossiers(self.db):
            if dossier.embedding_model in (None, model) and dossier.dimension in (None, dimension):
                continue
            log.info(
                "Dossier %s was indexed with %s; re-indexing with %s",
                dossier.id,
                dossier.embedding_model,
                model,
            )
            await self.library.drop(dossier.id)
            await dossiers.set_embedding_model(self.db, dossier.id, model, dimension)
            ready = [
                d.id for d in await docs.list_documents(self.db, dossier.id) if d.status == "ready"
            ]
            await docs.requeue(self.db, ready)  # queued by start() with the unfinished ones

    # ------------------------------------------------------------------ uploads
    def _dossier_lock(self, dossier_id: str) -> asyncio.Lock:
        return self._dossier_locks.setdefault(dossier_id, asyncio.Lock())

    async def add_files(
        self, dossier_id: str, received: list[ReceivedFile]
    ) -> list[docs.DocumentPublic]:
        """Register uploaded files as queued documents (or answer an existing document
        with the same sha256, flagged `duplicate`, deleting the new copy)."""
        answered: list[docs.DocumentPublic] = []
        async with self._dossier_lock(dossier_id):
            if await dossiers.get_dossier(self.db, dossier_id) is None:  # deleted meanwhile
                for item in received:
                    item.incoming.discard()
                raise LegalAssistantError("not_found", f"dossier {dossier_id}")
            for item in received:
                existing = [
                    d
                    for d in await docs.find_by_sha256(self.db, dossier_id, item.sha256)
                    if d.status != "failed"
                ]
                if existing:
                    item.incoming.discard()
                    answered.append(existing[0].model_copy(update={"duplicate": True}))
                    continue
                # An earlier failed copy of the same bytes is replaced by this attempt.
                for old in await docs.find_by_sha256(self.db, dossier_id, item.sha256):
                    await self._forget(dossier_id, old.id)
                document_id = new_id()
                item.incoming.commit(self.files.file_path(dossier_id, document_id))
                doc = await docs.create_document(
                    self.db,
                    document_id=document_id,
                    dossier_id=dossier_id,
                    filename=item.filename,
                    format=item.format,
                    size_bytes=item.size,
                    sha256=item.sha256,
                )
                answered.append(doc)
                self.events.publish(
                    dossier_id, document_event(doc.id, "queued", filename=doc.filename)
                )
                self._queue.put_nowait((dossier_id, doc.id))
            await dossiers.touch_dossier(self.db, dossier_id)
        return answered

    # ------------------------------------------------------------------ deletes
    async def _cancel_job(self, document_id: str) -> None:
        task = self._jobs.get(document_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _forget(self, dossier_id: str, document_id: str) -> None:
        await self._cancel_job(document_id)
        await self.library.remove(dossier_id, document_id)
        self.files.remove_document(dossier_id, document_id)
        await judgments.delete_judgment(self.db, document_id)
        await docs.delete_document(self.db, document_id)

    async def delete_document(self, dossier_id: str, document_id: str) -> None:
        """Remove the document's job, vectors and passages, files and row."""
        await self._forget(dossier_id, document_id)
        await dossiers.touch_dossier(self.db, dossier_id)
        self.events.publish(dossier_id, document_event(document_id, "deleted"))

    async def delete_dossier(self, dossier_id: str) -> bool:
        """Everything: jobs, index, files, document rows, conversations, the dossier."""
        async with self._dossier_lock(dossier_id):  # not while an upload registers files
            for doc in await docs.list_documents(self.db, dossier_id):
                await self._cancel_job(doc.id)
            await self.library.drop(dossier_id)
            deleted = await dossiers.delete_dossier(self.db, dossier_id)
            await asyncio.to_thread(self.files.remove_dossier, dossier_id)
        self.events.publish(dossier_id, {"dossier_id": dossier_id, "deleted": True})
        return deleted

    # ------------------------------------------------------------------ the job
    async def _worker(self) -> None:
        while True:
            dossier_id, document_id = await self._queue.get()
            job = asyncio.create_task(self._run(dossier_id, document_id))
            self._jobs[document_id] = job
            try:
                await job
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the service stops (the job was cancelled with us)
                # Only this job was cancelled: its document was deleted.
            except Exception:  # _run classifies its failures; this is a last resort
                log.exception("ingestion job %s crashed", document_id)
            finally:
                self._jobs.pop(document_id, None)

    async def _run(self, dossier_id: str, document_id: str) -> None:
        doc = await docs.get_document(self.db, dossier_id, document_id)
        if doc is None or doc.status != "queued":
            return  # deleted, or already handled
        try:
            await self._ingest(doc)
        except LegalAssistantError as err:
            await self._fail(dossier_id, document_id, err)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            log.exception("ingestion of %s failed", document_id)
            await self._fail(
                dossier_id,
                document_id,
                LegalAssistantError("ingestion_failed", f"{type(exc).__name__}: {exc}"[:300]),
            )

    async def _fail(self, dossier_id: str, document_id: str, err: LegalAssistantError) -> None:
        log.info("Document %s failed: %s", document_id, err)
        if await docs.mark_failed(self.db, document_id, err) is not None:
            self.events.publish(
                dossier_id, document_event(document_id, "failed", error=_error_payload(err))
            )

    async def _progress(
        self,
        doc: docs.DocumentPublic,
        status: docs.Status,
        done: int,
        total: int,
        progress: float,
    ) -> None:
        await docs.set_progress(
            self.db,
            doc.id,
            status=status,
            stage=status,
            done=done,
            total=total,
            progress=progress,
        )
        self.events.publish(
            doc.dossier_id,
            document_event(
                doc.id, status, done=done, total=total, progress=progress, filename=doc.filename
            ),
        )

    async def _ingest(self, doc: docs.DocumentPublic) -> None:
        path = self.files.file_path(doc.dossier_id, doc.id)
        if not path.is_file():
            raise LegalAssistantError("file_missing")
        await self._progress(doc, "extracting", 0, 0, 0.0)
        extracted = await self._extract(doc, path)
        # Passages, and the document read as a court decision (labels "§ n" by zone).
        passages, judgment = await asyncio.to_thread(read_document, extracted)
        self.files.write_extracted(doc.dossier_id, doc.id, _viewer_data(extracted, passages))

        embedder = self.library.embedder
        dossier = await dossiers.get_dossier(self.db, doc.dossier_id)
        if dossier is None:
            return  # deleted meanwhile
        if dossier.embedding_model is None:
            await dossiers.set_embedding_model(
                self.db, doc.dossier_id, embedder.model_id, embedder.dimension
            )
        total = len(passages)
        await self._progress(doc, "embedding", 0, total, _EXTRACT_SHARE)
        batch = self.settings.ingest_embed_batch
        chunks: list[Any] = []
        last = time.monotonic()
        for start in range(0, total, batch):
            texts = [p.text for p in passages[start : start + batch]]
            chunks.append(await embedder.passages(texts))
            done = min(start + batch, total)
            if done == total or time.monotonic() - last >= _PROGRESS_INTERVAL_S:
                last = time.monotonic()
                await self._progress(
                    doc, "embedding", done, total, _EXTRACT_SHARE + _EMBED_SHARE * done / total
                )
        vectors = (
            np.concatenate(chunks)
            if chunks
            else np.zeros((0, embedder.dimension), dtype=np.float32)
        )
        await self.library.add(doc.dossier_id, doc.id, passages, vectors, embedder.dimension)
        await judgments.save_judgment(
            self.db, dossier_id=doc.dossier_id, document_id=doc.id, judgment=judgment
        )
        pages = extracted.pages
        await docs.update_document(
            self.db,
            doc.id,
            status="ready",
            stage="ready",
            done=total,
            total=total,
            progress=1.0,
            pages=len(pages),
            passages=total,
            ocr_pages=[p.number for p in pages if p.source == "ocr"],
            no_text_pages=[p.number for p in pages if p.source == "none"],
            embedding_model=embedder.model_id,
        )
        self.events.publish(
            doc.dossier_id,
            document_event(
                doc.id, "ready", done=total, total=total, progress=1.0, filename=doc.filename
            ),
        )

    async def _extract(self, doc: docs.DocumentPublic, path: Any) -> Extracted:
        """Run the extraction, publishing `extracting p/N` (throttled) as pages come."""
        loop = asyncio.get_running_loop()
        state = {"last": 0.0}
        pending: set[asyncio.Task[None]] = set()

        def on_page(done: int, total: int) -> None:
            # May be called from the extraction's thread: hop to the loop.
            now = time.monotonic()
            if done < total and now - state["last"] < _PROGRESS_INTERVAL_S:
                return
            state["last"] = now
            share = _EXTRACT_SHARE * done / total if total else 0.0

            def publish() -> None:
                task = asyncio.ensure_future(self._progress(doc, "extracting", done, total, share))
                pending.add(task)
                task.add_done_callback(pending.discard)

            loop.call_soon_threadsafe(publish)

        try:
            extracted: Extracted = await call(
                extract_document, path, doc.filename, progress=on_page, settings=self.settings
            )
        finally:
            for task in list(pending):
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
        return extracted


def _viewer_data(extracted: Extracted, passages: list[Passage]) -> dict[str, Any]:
    """What the page viewer needs later without extracting again."""
    return {
        "format": extracted.format,
        "paginated": extracted.paginated,
        "pages": [
            {"number": p.number, "text": p.text, "source": p.source, "note": p.note}
            for p in extracted.pages
        ],
        "passages": [
            {
                "ordinal": p.ordinal,
                "page": p.page,
                "paragraph": p.paragraph,
                "char_start": p.char_start,
                "char_end": p.char_end,
                "label": p.label,
            }
            for p in passages
        ],
    }
