"""The dossiers' retrieval indexes, opened once and shared by ingestion, the search route
and the chat grounding.

One owner: every call into a dossier's index goes through `DossierLibrary`. Writes (add,
remove, drop) take the dossier's writer lock, one at a time; reads (search, count,
passages) take no lock at all: `DossierIndex` lets searches run beside a write and beside
each other (its module docstring), so a search neither waits for an ingestion's index
write nor for another search. A dossier whose index is being dropped is not reopened by
a read meanwhile (the read finds nothing), and its index is closed before its directory
is removed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from legal_assistant.config import Settings
from legal_assistant.documents.embedder import Embedder
from legal_assistant.documents.files import DossierFiles
from legal_assistant.documents.index import DossierIndex, passage_id
from legal_assistant.documents.keyword import StoredPassage
from legal_assistant.documents.model import Passage
from legal_assistant.documents.retrieval import SearchHit, search
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.store import Database
from legal_assistant.store.documents import document_names
from legal_assistant.store.dossiers import get_dossier

log = logging.getLogger("legal_assistant")


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await `fn` if it is a coroutine function, else run it in a thread: index and
    search work is CPU-bound and must not stall the event loop."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass(frozen=True, slots=True)
class Found:
    """One search result as the API and the grounding use it (SearchHit + filename)."""

    hit: SearchHit
    filename: str

    def to_dict(self) -> dict[str, Any]:
        h = self.hit
        return {
            "passage_id": h.passage_id,
            "document_id": h.document_id,
            "filename": self.filename,
            "page": h.page,
            "paragraph": h.paragraph,
            "label": h.label,
            "text": h.text,
            "score": float(h.score),
            "char_start": h.char_start,
            "char_end": h.char_end,
            "highlights": [list(span) for span in (h.highlights or [])],
            "relevant": bool(h.relevant),
        }


class DossierLibrary:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        supervisor: Supervisor,
        files: DossierFiles,
        *,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.files = files
        self.embedder = embedder or Embedder(supervisor, settings)
        self._indexes: dict[str, DossierIndex] = {}
        self._writers: dict[str, asyncio.Lock] = {}
        self._dropping: set[str] = set()  # no reader opens these indexes meanwhile

    @staticmethod
    def passage_id(document_id: str, ordinal: int) -> str:
        """The id the index gives a document's passage number `ordinal`."""
        return passage_id(document_id, ordinal)

    def _writer(self, dossier_id: str) -> asyncio.Lock:
        return self._writers.setdefault(dossier_id, asyncio.Lock())

    async def _reader(self, dossier_id: str) -> DossierIndex | None:
        """The index for a read, or None (no dossier, no index yet, or being dropped)."""
        if dossier_id in self._dropping:
            return None
        # An open index is a live dossier's: deleting a dossier drops its index (`drop`),
        # so a search need not ask the database again (it runs on every search).
        open_index = self._indexes.get(dossier_id)
        if open_index is not None:
            return open_index
        dossier = await get_dossier(self.db, dossier_id, count_documents=False)
        if dossier is None or dossier_id in self._dropping:
            return None
        if not self.files.index_dir(dossier_id).exists():
            return None
        return self._open(dossier_id, self._dimension(dossier.dimension))

    def _open(self, dossier_id: str, dimension: int) -> DossierIndex:
        index = self._indexes.get(dossier_id)
        if index is None:
            folder = self.files.index_dir(dossier_id)
            folder.mkdir(parents=True, exist_ok=True)
            index = DossierIndex(folder, dimension)
            self._indexes[dossier_id] = index
        return index

    def _dimension(self, recorded: int | None) -> int:
        return int(recorded or self.embedder.dimension)

    async def add(
        self,
        dossier_id: str,
        document_id: str,
        passages: list[Passage],
        vectors: Any,
        dimension: int,
    ) -> None:
        """Index a document's passages (replacing an earlier copy, e.g. from a run a
        crash interrupted after its add): searchable only once complete."""
        async with self._writer(dossier_id):
            index = self._open(dossier_id, dimension)
            if await call(index.has_document, document_id):
                await call(index.delete_document, document_id)
            await call(index.add_document, document_id, passages, vectors)

    async def remove(self, dossier_id: str, document_id: str) -> None:
        async with self._writer(dossier_id):
            if not self.files.index_dir(dossier_id).exists():
                return
            dossier = await get_dossier(self.db, dossier_id)
            index = self._open(dossier_id, self._dimension(dossier.dimension if dossier else None))
            if await call(index.has_document, document_id):
                await call(index.delete_document, document_id)

    async def count(self, dossier_id: str) -> int:
        index = await self._reader(dossier_id)
        return 0 if index is None else index.count()

    async def drop(self, dossier_id: str) -> None:
        """Close and delete a dossier's index (dossier deleted, or re-indexed for a new
        embedding model)."""
        async with self._writer(dossier_id):
            self._dropping.add(dossier_id)
            try:
                index = self._indexes.pop(dossier_id, None)
                close = getattr(index, "close", None)
                if close is not None:
                    await call(close)
                await asyncio.to_thread(
                    shutil.rmtree, self.files.index_dir(dossier_id), ignore_errors=True
                )
            finally:
                self._dropping.discard(dossier_id)

    async def search(self, dossier_id: str, query: str, k: int) -> tuple[list[Found], bool]:
        """The dossier's best passages for `query` (hybrid), with their file names, and
        whether any is over the calibrated relevance threshold."""
        index = await self._reader(dossier_id)
        if index is None or not index.count():
            return [], False
        # No lock: reads never wait for a write (DossierIndex's module docstring), and the
        # query's embedding waits only for the embedding queue (interactive lane).
        hits: list[SearchHit] = await search(index, self.embedder, query, k)
        names = await document_names(self.db, dossier_id)
        # A hit of a document deleted meanwhile (between the search and this join) is
        # dropped rather than shown without a name.
        found = [Found(h, names[h.document_id]) for h in hits if h.document_id in names]
        return found, any(f.hit.relevant for f in found)

    async def passages(self, dossier_id: str, ids: Sequence[str]) -> dict[str, StoredPassage]:
        """The dossier's indexed passages of these ids ("<document id>:<ordinal>"); ids
        that are malformed, unknown or of another dossier are left out."""
        wanted: dict[tuple[str, int], str] = {}
        for pid in ids:
            document_id, _, ordinal = pid.rpartition(":")
            if document_id and ordinal.isdigit() and len(ordinal) <= 9:
                wanted[(document_id, int(ordinal))] = pid
        index = await self._reader(dossier_id) if wanted else None
        if index is None:
            return {}
        rows = await asyncio.to_thread(index.passages, list(wanted))
        return {wanted[key]: row for key, row in rows.items()}

    async def aclose(self) -> None:
        await self.embedder.aclose()
        for dossier_id in list(self._indexes):
            async with self._writer(dossier_id):
                index = self._indexes.pop(dossier_id, None)
                close = getattr(index, "close", None)
                if close is not None:
                    try:
                        await call(close)
                    except Exception:  # closing must not stop the shutdown
                        log.exception("closing the index of dossier %s", dossier_id)
