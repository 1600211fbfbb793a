"""The dense half of a dossier's retrieval index: usearch (HNSW, cosine) in one file.

Small indexes are searched exactly (every vector compared: recall 1.0 and still under a
few milliseconds); from `EXACT_MAX` vectors on, the HNSW graph answers (sub-millisecond,
recall measured in benchmarks/ingest.py). Vectors are stored as float16: half the memory
and disk of float32, for a cosine error far below the gap between two ranks
(docs/retrieval.md has the measurements).

Persistence: `save()` writes a new file beside the old one and renames it over, so the
file on disk is always a complete index (a crash mid-save leaves the previous one).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from usearch.index import Index

# Exact search up to this many vectors (measured: ~3 ms at 10k on 2 busy cores).
EXACT_MAX = 20_000
CONNECTIVITY = 16  # HNSW "M"
EXPANSION_ADD = 128  # "efConstruction"
EXPANSION_SEARCH = 256  # "ef": recall@10 0.973 vs exact at 100k (0.940 at 128; benchmarks)


class VectorStore:
    """One usearch file. Not thread-safe by itself: DossierIndex holds the lock."""

    def __init__(self, path: Path, dimension: int, *, dtype: str = "f16") -> None:
        self.path = path
        self.dimension = dimension
        self._index = Index(
            ndim=dimension,
            metric="cos",
            dtype=dtype,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        if path.is_file():
            self._index.load(str(path))
            if self._index.ndim != dimension:
                raise ValueError(
                    f"{path}: vectors of dimension {self._index.ndim}, expected {dimension}"
                )

    def __len__(self) -> int:
        return len(self._index)

    def add(self, keys: npt.NDArray[np.uint64], vectors: npt.NDArray[np.float32]) -> None:
        if len(keys):
            self._index.add(keys, vectors, threads=1)

    def remove(self, keys: Sequence[int] | npt.NDArray[np.uint64]) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        if len(keys):
            self._index.remove(keys)

    def keys(self) -> npt.NDArray[np.uint64]:
        return np.asarray(self._index.keys, dtype=np.uint64)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        self._index.save(str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def search(
        self, query: npt.NDArray[np.float32], limit: int, *, exact: bool | None = None
    ) -> list[tuple[int, float]]:
        """(key, cosine similarity), best first."""
        if not len(self._index) or limit <= 0:
            return []
        if exact is None:
            exact = len(self._index) <= EXACT_MAX
        found = self._index.search(query, min(limit, len(self._index)), exact=exact)
        return [(int(k), 1.0 - float(d)) for k, d in zip(found.keys, found.distances, strict=True)]

    def cosines(self, query: npt.NDArray[np.float32], keys: Sequence[int]) -> dict[int, float]:
        """Cosine of the query with the stored vectors of `keys` (hits found by keywords
        only get a dense score too: the relevance threshold reads it)."""
        if not keys:
            return {}
        got: Any = self._index.get(np.asarray(keys, dtype=np.uint64), dtype="f32")
        rows = [got] if len(keys) == 1 else list(got)
        out: dict[int, float] = {}
        for key, row in zip(keys, rows, strict=True):
            if row is not None:  # a key removed meanwhile has no vector
                vec = np.asarray(row, dtype=np.float32).reshape(-1)
                out[int(key)] = float(vec @ query / max(float(np.linalg.norm(vec)), 1e-12))
        return out
