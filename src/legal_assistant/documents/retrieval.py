"""Hybrid search in a dossier: BM25 (keyword.py) and dense (vectors.py) results fused by
reciprocal rank fusion, with the query's words highlighted and a calibrated
"nothing relevant" signal.

RRF (Cormack et al. 2009): score(p) = Σ over the two rankings of w / (RRF_K + rank(p)).
It needs no score normalisation — BM25 scores are unbounded and e5 cosines cluster in
0.75–0.92 — and a passage ranked well by both beats one ranked first by only one. The
keyword list's weight is the query's vocabulary coverage squared (the share of its terms
that occur in the dossier at all): an English question over French documents matches
almost no term and its BM25 list is noise, which plain RRF lets drag the dense ranking
down (measured: English recall@5 0.50 vs 0.56 dense-only on dev). RRF_K = 5 (not the
paper's 60): the top of each list counts more (dev MRR 0.767 at 5, 0.722 at 10, same
recall@5). Both tuned on the dev questions only (docs/retrieval.md).

Relevance: the e5 models give every text a high cosine to every other, so a fixed 0.35
(the origin's threshold) filters nothing. The threshold is calibrated per embedding
model on the dev questions against off-topic questions (benchmarks/retrieval.py
--calibrate; the numbers are in docs/retrieval.md). A hit is `relevant` when its cosine
to the query reaches the threshold; a search is relevant when any hit is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from legal_assistant.documents.index import DossierIndex
from legal_assistant.documents.keyword import highlight_spans, query_terms
from legal_assistant.errors import LegalAssistantError

RRF_K = 5  # tuned on dev (60, the paper's, flattens the top ranks: docs/retrieval.md)
CANDIDATES = 50  # taken from each ranking before fusion
MAX_QUERY_CHARS = 2000
MAX_K = 100

# Cosine (query, passage) at or above which a passage is about the question, per model.
# Calibrated on benchmarks/data/questions.jsonl (dev split) vs off-topic questions.
RELEVANCE_THRESHOLDS: dict[str, float] = {"embed:multilingual-e5-small": 0.82}
DEFAULT_THRESHOLD = 0.82


class QueryEmbedder(Protocol):
    model_id: str

    async def query(self, text: str) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class SearchHit:
    passage_id: str
    document_id: str
    page: int
    paragraph: int | None
    label: str | None
    text: str
    score: float  # the fused RRF score (ranks, not a probability)
    char_start: int
    char_end: int
    highlights: list[tuple[int, int]] = field(default_factory=list)
    relevant: bool = False
    cosine: float = 0.0  # dense similarity to the query (what `relevant` reads)
    bm25: float | None = None  # None: not found by keywords


def relevance_threshold(model_id: str) -> float:
    return RELEVANCE_THRESHOLDS.get(model_id, DEFAULT_THRESHOLD)


def rrf(
    rankings: list[list[int]], weights: list[float] | None = None, k: int = RRF_K
) -> dict[int, float]:
    """Weighted reciprocal rank fusion of several best-first rankings of keys."""
    fused: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        weight = weights[i] if weights is not None else 1.0
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def check_query(query: str, k: int) -> str:
    text = query.strip() if isinstance(query, str) else ""
    if not text:
        raise LegalAssistantError(
            "bad_request", "empty query",
            message_fr="❌ La recherche est vide.", message_en="❌ The search is empty.",
        )  # fmt: skip
    if len(text) > MAX_QUERY_CHARS:
        raise LegalAssistantError(
            "bad_request", f"query longer than {MAX_QUERY_CHARS} characters",
            message_fr=f"❌ Recherche trop longue (plus de {MAX_QUERY_CHARS} caractères).",
            message_en=f"❌ Search too long (over {MAX_QUERY_CHARS} characters).",
        )  # fmt: skip
    if not 1 <= k <= MAX_K:
        raise LegalAssistantError(
            "bad_request", f"k must be between 1 and {MAX_K}",
            message_fr=f"❌ k doit être compris entre 1 et {MAX_K}.",
            message_en=f"❌ k must be between 1 and {MAX_K}.",
        )  # fmt: skip
    return text


async def search(
    index: DossierIndex, embedder: QueryEmbedder, query: str, k: int = 10
) -> list[SearchHit]:
    """The k best passages for `query`, hybrid (mode="hybrid" of `search_mode`)."""
    return await search_mode(index, embedder, query, k, mode="hybrid")


async def search_mode(
    index: DossierIndex,
    embedder: QueryEmbedder | None,
    query: str,
    k: int = 10,
    *,
    mode: str = "hybrid",
) -> list[SearchHit]:
    """`mode`: "hybrid", "keyword" or "dense" (the benchmark compares the three)."""
    text = check_query(query, k)
    vector = None
    if mode != "keyword":
        if embedder is None:
            raise ValueError("dense search needs an embedder")
        vector = await embedder.query(text)
    threshold = relevance_threshold(embedder.model_id) if embedder is not None else 1.0
    # Tantivy and usearch release the GIL; the thread keeps the event loop free.
    return await asyncio.to_thread(_rank, index, text, vector, k, mode, threshold)


def _rank(
    index: DossierIndex,
    text: str,
    vector: npt.NDArray[np.float32] | None,
    k: int,
    mode: str,
    threshold: float,
) -> list[SearchHit]:
    terms = query_terms(text)
    keyword = index.keyword_search(terms, CANDIDATES) if mode != "dense" else []
    use_dense = vector is not None and mode != "keyword"
    dense = index.dense_search(vector, CANDIDATES) if vector is not None and use_dense else []
    if mode == "keyword":
        order = [key for key, _ in keyword]
        scores = {key: s for key, s in keyword}
    elif mode == "dense":
        order = [key for key, _ in dense]
        scores = {key: s for key, s in dense}
    else:
        keyword_weight = index.keyword_coverage(terms) ** 2
        scores = rrf([[k for k, _ in keyword], [k for k, _ in dense]], [keyword_weight, 1.0])
        order = sorted(scores, key=lambda key: (-scores[key], key))
    top = order[:k]
    rows = index.fetch(top)
    bm25 = dict(keyword)
    cosines = dict(dense)
    if vector is not None:
        missing = [key for key in top if key not in cosines]
        cosines.update(index.cosines(vector, missing))
    hits: list[SearchHit] = []
    for key in top:
        row = rows.get(key)
        if row is None:  # deleted between the ranking and the fetch
            continue
        cosine = cosines.get(key, 0.0)
        hits.append(
            SearchHit(
                passage_id=row.passage_id, document_id=row.document_id, page=row.page,
                paragraph=row.paragraph, label=row.label, text=row.text,
                score=float(scores[key]), char_start=row.char_start, char_end=row.char_end,
                highlights=highlight_spans(row.text, terms),
                relevant=vector is not None and cosine >= threshold,
                cosine=cosine, bm25=bm25.get(key),
            )
        )  # fmt: skip
    return hits
