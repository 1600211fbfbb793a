"""A dossier's retrieval index on disk: keyword (Tantivy, keyword.py) + dense (usearch,
vectors.py), made into one store with document-level atomicity.

Layout of the dossier's index directory:
    keyword/          Tantivy index: passage text, page, label, offsets; BM25 terms
    vectors.usearch   the passages' vectors (HNSW), keyed by an integer passage key
    manifest.json     THE commit point: the documents that are searchable, with their keys
    journal.json      the write in progress (present only during an add or a delete)

A document is searchable only once it is in the manifest, and it gets there only after
its passages are committed in Tantivy and its vectors saved: every search filters on the
manifest, so a half-written document is never returned. A delete takes the document out
of the manifest first (invisible at once), then out of both stores. The journal names
the document being written; on open, a document the journal names that the manifest
does not hold is purged from both stores (the crash happened before its commit point, or
after a delete's).

Concurrency: one writer at a time (`_write_lock`; the library above also serialises a
dossier's writers), and searches never wait for a whole write. What a search sees is one
immutable `_View` of the manifest, swapped in at the commit point, so it needs no lock;
Tantivy's searchers are snapshots, safe beside its writer (tantivy-py's `searcher`,
`writer` and `reload` take `&self` on a `Sync` index); usearch is not safe to search
while it is being changed (its search contexts are per thread id, not per caller), so
every usearch call holds `_vectors_lock`, and a document's vectors are added in chunks so
a search waits at most one chunk.

Why Tantivy + usearch rather than one database: docs/retrieval.md (measurements).
"""

from __future__ import annotations

import json
import os
import re
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from legal_assistant.documents.keyword import KeywordStore, StoredPassage
from legal_assistant.documents.model import Passage
from legal_assistant.documents.vectors import VectorStore

FORMAT = 1
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def passage_id(document_id: str, ordinal: int) -> str:
    """The id of a document's passage number `ordinal` (as DossierLibrary names it)."""
    return f"{document_id}:{ordinal}"


# Vectors added per hold of the vectors lock (a search waits at most this many inserts).
_ADD_CHUNK = 64


@dataclass(frozen=True, slots=True)
class _Span:
    first_key: int
    count: int


@dataclass(frozen=True, slots=True)
class _View:
    """The searchable documents (the manifest), never changed once made; `hidden` is how
    many keys of a document being written or deleted the stores may return meanwhile."""

    documents: dict[str, _Span]
    ranges: list[tuple[int, int, str]]
    starts: list[int]
    hidden: int = 0

    @classmethod
    def of(cls, documents: dict[str, _Span], hidden: int = 0) -> _View:
        ranges = sorted((s.first_key, s.count, doc) for doc, s in documents.items() if s.count)
        return cls(dict(documents), ranges, [r[0] for r in ranges], hidden)

    def owner(self, key: int) -> str | None:
        i = bisect_right(self.starts, key) - 1
        if i < 0:
            return None
        first, count, doc = self.ranges[i]
        return doc if key < first + count else None


class DossierIndex:
    def __init__(self, directory: Path, dimension: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dimension = dimension
        self._write_lock = threading.RLock()
        self._vectors_lock = threading.Lock()
        self._manifest_path = self.directory / "manifest.json"
        self._journal_path = self.directory / "journal.json"
        manifest = _read_json(self._manifest_path) or {
            "format": FORMAT, "dimension": dimension, "next_key": 0, "documents": {}
        }  # fmt: skip
        if int(manifest["dimension"]) != dimension:
            raise ValueError(
                f"{self.directory}: index of dimension {manifest['dimension']}, "
                f"opened for {dimension} (re-index for the new embedding model)"
            )
        self._next_key = int(manifest["next_key"])
        self._view = _View.of(
            {
                doc: _Span(int(s["first_key"]), int(s["count"]))
                for doc, s in manifest["documents"].items()
            }
        )
        self._keyword = KeywordStore(self.directory / "keyword")
        self._vectors = VectorStore(self.directory / "vectors.usearch", dimension)
        self._recover()

    # ----------------------------------------------------------------- queries
    def has_document(self, document_id: str) -> bool:
        return document_id in self._view.documents

    def document_ids(self) -> list[str]:
        return sorted(self._view.documents)

    def count(self) -> int:
        """Searchable passages."""
        return sum(s.count for s in self._view.documents.values())

    def keyword_search(self, terms: dict[str, list[str]], limit: int) -> list[tuple[int, float]]:
        """(key, BM25) of committed passages, best first."""
        view = self._view
        # Over-fetch: hits of a document being written or deleted are dropped below.
        hits = self._keyword.search(terms, limit + 8 + view.hidden)
        return [h for h in hits if view.owner(h[0]) is not None][:limit]

    def keyword_coverage(self, terms: dict[str, list[str]]) -> float:
        return self._keyword.coverage(terms)

    def dense_search(
        self, vector: npt.NDArray[np.float32], limit: int, *, exact: bool | None = None
    ) -> list[tuple[int, float]]:
        """(key, cosine) of committed passages, best first."""
        view = self._view
        with self._vectors_lock:
            hits = self._vectors.search(vector, limit + 8 + view.hidden, exact=exact)
        return [h for h in hits if view.owner(h[0]) is not None][:limit]

    def fetch(self, keys: Sequence[int]) -> dict[int, StoredPassage]:
        view = self._view
        rows = self._keyword.fetch(keys)
        return {k: r for k, r in rows.items() if view.owner(k) == r.document_id}

    def passages(self, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], StoredPassage]:
        """Committed passages by (document id, ordinal); absent ones are left out."""
        view = self._view
        keys: dict[int, tuple[str, int]] = {}
        for document_id, ordinal in wanted:
            span = view.documents.get(document_id)
            if span is not None and 0 <= ordinal < span.count:
                keys[span.first_key + ordinal] = (document_id, ordinal)
        rows = self._keyword.fetch(list(keys))
        return {
            keys[k]: row
            for k, row in rows.items()
            if view.owner(k) == row.document_id and (row.document_id, row.ordinal) == keys[k]
        }

    def cosines(self, vector: npt.NDArray[np.float32], keys: Sequence[int]) -> dict[int, float]:
        with self._vectors_lock:
            return self._vectors.cosines(vector, keys)

    # ------------------------------------------------------------------ writes
    def add_document(self, document_id: str, passages: Sequence[Passage], vectors: Any) -> None:
        """Index a document; searchable only once everything is on disk. An existing
        document of that id is replaced."""
        _check_id(document_id)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        if matrix.shape[0] != len(passages):
            raise ValueError(f"{len(passages)} passages but {matrix.shape[0]} vectors")
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinity")
        with self._write_lock:
            if document_id in self._view.documents:
                self.delete_document(document_id)
            span = _Span(self._next_key, len(passages))
            keys = np.arange(span.first_key, span.first_key + span.count, dtype=np.uint64)
            rows = [
                StoredPassage(
                    key=int(key), passage_id=passage_id(document_id, p.ordinal),
                    document_id=document_id, ordinal=p.ordinal, page=p.page,
                    paragraph=p.paragraph, label=p.label, char_start=p.char_start,
                    char_end=p.char_end, text=p.text,
                )
                for key, p in zip(keys, passages, strict=True)
            ]  # fmt: skip
            self._write_journal("add", document_id, span)
            before = self._view
            self._view = _View.of(before.documents, hidden=span.count)
            try:
                self._keyword.add(rows)
                for start in range(0, span.count, _ADD_CHUNK):
                    chunk = slice(start, start + _ADD_CHUNK)
                    with self._vectors_lock:
                        self._vectors.add(keys[chunk], matrix[chunk])
                self._save_vectors()
                self._next_key = span.first_key + span.count
                self._write_manifest({**before.documents, document_id: span})  # commit point
            except BaseException:
                self._purge(document_id, span)
                self._view = before
                raise
            self._view = _View.of({**before.documents, document_id: span})
            self._journal_path.unlink(missing_ok=True)

    def delete_document(self, document_id: str) -> bool:
        """Remove a document's passages and vectors; False when it was not indexed."""
        with self._write_lock:
            span = self._view.documents.get(document_id)
            if span is None:
                return False
            self._write_journal("delete", document_id, span)
            documents = {d: s for d, s in self._view.documents.items() if d != document_id}
            self._write_manifest(documents)
            self._view = _View.of(documents, hidden=span.count)  # invisible from here on
            self._purge(document_id, span)
            self._view = _View.of(documents)
            self._journal_path.unlink(missing_ok=True)
            return True

    def close(self) -> None:
        """Nothing stays open between calls (each write opens and drops its writer)."""

    # ---------------------------------------------------------------- internals
    def _save_vectors(self) -> None:
        # Saving reads the graph and changes nothing: searches go on meanwhile (the
        # write lock keeps other changes out).
        self._vectors.save()

    def _purge(self, document_id: str, span: _Span) -> None:
        self._keyword.delete_documents([document_id])
        stale = [k for k in range(span.first_key, span.first_key + span.count)]
        with self._vectors_lock:
            present = set(self._vectors.keys().tolist())
            self._vectors.remove([k for k in stale if k in present])
        self._save_vectors()

    def _recover(self) -> None:
        """Finish what a crash interrupted (see the module docstring)."""
        journal = _read_json(self._journal_path)
        if journal is not None:
            doc = str(journal["document_id"])
            if doc not in self._view.documents:
                self._purge(doc, _Span(int(journal["first_key"]), int(journal["count"])))
            self._journal_path.unlink(missing_ok=True)
        # Vectors no committed document owns (a crash between save and manifest write).
        orphans = [k for k in self._vectors.keys().tolist() if self._view.owner(int(k)) is None]
        if orphans:
            self._vectors.remove(orphans)
            self._vectors.save()

    def _write_manifest(self, documents: dict[str, _Span]) -> None:
        _write_json(
            self._manifest_path,
            {
                "format": FORMAT,
                "dimension": self.dimension,
                "next_key": self._next_key,
                "documents": {
                    doc: {"first_key": s.first_key, "count": s.count}
                    for doc, s in sorted(documents.items())
                },
            },
        )

    def _write_journal(self, op: str, document_id: str, span: _Span) -> None:
        _write_json(
            self._journal_path,
            {"op": op, "document_id": document_id, "first_key": span.first_key,
             "count": span.count},
        )  # fmt: skip


def _check_id(document_id: str) -> None:
    if not isinstance(document_id, str) or not _DOCUMENT_ID.match(document_id):
        raise ValueError(f"invalid document id {document_id!r}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename, fsynced: the file is always the old or the new version."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
