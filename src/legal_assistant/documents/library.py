"""The dossiers' retrieval indexes, opened once and shared by ingestion, the search route
and the chat grounding.

One owner: every call into a dossier's index goes through `DossierLibrary` under that
dossier's lock, so a search never runs while a document is being added or deleted in
the same index (adds are short: the embedding happens before, outside the lock), and a
deleted dossier's index is closed before its directory is removed.
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
from legal_assistant.store.documents import list_documents
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
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def passage_id(document_id: str, ordinal: int) -> str:
        """The id the index gives a document's passage number `ordinal`."""
        return passage_id(document_id, ordinal)

    def lock(self, dossier_id: str) -> asyncio.Lock:
        return self._locks.setdefault(dossier_id, asyncio.Lock())

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
        async with self.lock(dossier_id):
            index = self._open(dossier_id, dimension)
            if await call(index.has_document, document_id):
                await call(index.delete_document, document_id)
            await call(index.add_document, document_id, passages, vectors)

    async def remove(self, dossier_id: str, document_id: str) -> None:
        async with self.lock(dossier_id):
            if not self.files.index_dir(dossier_id).exists():
                return
            dossier = await get_dossier(self.db, dossier_id)
            index = self._open(dossier_id, self._dimension(dossier.dimension if dossier else None))
            if await call(index.has_document, document_id):
                await call(index.delete_document, document_id)

    async def count(self, dossier_id: str) -> int:
        async with self.lock(dossier_id):
            if not self.files.index_dir(dossier_id).exists():
                return 0
            dossier = await get_dossier(self.db, dossier_id)
            index = self._open(dossier_id, self._dimension(dossier.dimension if dossier else None))
            return int(await call(index.count))

    async def drop(self, dossier_id: str) -> None:
        """Close and delete a dossier's index (dossier deleted, or re-indexed for a new
        embedding model)."""
        async with self.lock(dossier_id):
            index = self._indexes.pop(dossier_id, None)
            close = getattr(index, "close", None)
            if close is not None:
                await call(close)
            await asyncio.to_thread(
                shutil.rmtree, self.files.index_dir(dossier_id), ignore_errors=True
            )

    async def search(self, dossier_id: str, query: str, k: int) -> tuple[list[Found], bool]:
        """The dossier's best passages for `query` (hybrid), with their file names, and
        whether any is over the calibrated relevance threshold."""
        dossier = await get_dossier(self.db, dossier_id)
        if dossier is None or not self.files.index_dir(dossier_id).exists():
            return [], False
        async with self.lock(dossier_id):
            index = self._open(dossier_id, self._dimension(dossier.dimension))
            if not await call(index.count):
                return [], False
            hits: list[SearchHit] = await call(search, index, self.embedder, query, k)
        names = {d.id: d.filename for d in await list_documents(self.db, dossier_id)}
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
        dossier = await get_dossier(self.db, dossier_id)
        if not wanted or dossier is None or not self.files.index_dir(dossier_id).exists():
            return {}
        async with self.lock(dossier_id):
            index = self._open(dossier_id, self._dimension(dossier.dimension))
            rows = await call(index.passages, list(wanted))
        return {wanted[key]: row for key, row in rows.items()}

    async def aclose(self) -> None:
        await self.embedder.aclose()
        for dossier_id in list(self._indexes):
            async with self.lock(dossier_id):
                index = self._indexes.pop(dossier_id, None)
                close = getattr(index, "close", None)
                if close is not None:
                    try:
                        await call(close)
                    except Exception:  # closing must not stop the shutdown
                        log.exception("closing the index of dossier %s", dossier_id)
