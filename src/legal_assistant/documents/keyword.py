"""The keyword half of a dossier's retrieval index: Tantivy (BM25) on disk.

Each passage is indexed twice, with a French and an English analyzer (lowercase, the
language's stop words, its Snowball stemmer, then accents folded), because a dossier
mixes both languages and nothing reliable says which one a passage is in. A query is
analyzed with the same two analyzers and searched with OR semantics: a natural question
("Qui doit réparer le dommage causé à autrui ?") must find passages that contain only
some of its words (SurrealDB's `@@` requires all of them, FIELD-NOTES.md).

The query is never given to Tantivy's query parser: user text would be read as query
syntax (`field:`, quotes, `-`). It is analyzed into terms and turned into term queries.

The stored fields (passage text, page, label, offsets) live here too: they are what a
hit is shown with, and the vectors side keeps only vectors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy
from tantivy import Filter, Occur, Query, TextAnalyzerBuilder, Tokenizer

# Analyzer names registered on every open (Tantivy does not persist custom analyzers).
_FR, _EN = "la_fr", "la_en"
_WRITER_HEAP = 32_000_000  # bytes; one thread (two cores shared with the engines)
# Tokens longer than this are not words (base64, hashes, glued tables).
_MAX_TOKEN = 40
# Query terms kept: a pasted paragraph must not become a 2,000-clause query.
MAX_QUERY_TERMS = 64


def _analyzer(language: str) -> tantivy.TextAnalyzer:
    return (
        TextAnalyzerBuilder(Tokenizer.simple())
        .filter(Filter.remove_long(_MAX_TOKEN))
        .filter(Filter.lowercase())
        .filter(Filter.stopword(language))
        # Stem before folding accents: the Snowball stemmers expect the accented forms.
        .filter(Filter.stemmer(language))
        .filter(Filter.ascii_fold())
        .build()
    )


ANALYZERS: dict[str, tantivy.TextAnalyzer] = {_FR: _analyzer("french"), _EN: _analyzer("english")}

# Stop-word tests per language: a word is a stop word when this drops it. Each field's
# analyzer removes only its own language's stop words, so the English field keeps French
# ones ("de", "la", "au", "à") and the French field keeps English ones ("the", "of").
_STOP_TESTS = [
    TextAnalyzerBuilder(Tokenizer.simple())
    .filter(Filter.lowercase())
    .filter(Filter.stopword(lang))
    .build()
    for lang in ("french", "english")
]


@functools.lru_cache(maxsize=4096)
def is_stop_word(word: str) -> bool:
    """A French or an English stop word ("de", "la", "à", "the", "of")."""
    return any(not test.analyze(word) for test in _STOP_TESTS)


@dataclass(frozen=True, slots=True)
class StoredPassage:
    key: int
    passage_id: str
    document_id: str
    ordinal: int
    page: int
    paragraph: int | None
    label: str | None
    char_start: int
    char_end: int
    text: str


def query_terms(query: str) -> dict[str, list[str]]:
    """The query's distinct terms per analyzer (field), in order, bounded."""
    terms: dict[str, list[str]] = {}
    for field, analyzer in ANALYZERS.items():
        seen: dict[str, None] = {}
        for term in analyzer.analyze(query):
            seen.setdefault(term)
            if len(seen) >= MAX_QUERY_TERMS:
                break
        terms[field] = list(seen)
    return terms


def highlight_spans(text: str, terms: dict[str, list[str]]) -> list[tuple[int, int]]:
    """[start, end) character spans of `text` whose words share a stem with the query,
    under either analyzer, merged when they touch. Stop words of either language are
    never highlighted: the query keeps them for ranking (measured: dropping them from
    the BM25 query lost three French dev questions, docs/retrieval.md), but a reader
    looking for why a passage matched wants its content words, not every "de"."""
    spans: set[tuple[int, int]] = set()
    for field, analyzer in ANALYZERS.items():
        wanted = set(terms.get(field, ()))
        if not wanted:
            continue
        for token in analyzer.pre_tokenize(text).tokens:
            start, end = token.char_offset_from, token.char_offset_to
            if token.text in wanted and not is_stop_word(text[start:end].lower()):
                spans.add((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class KeywordStore:
    """One Tantivy index directory. Not thread-safe by itself: DossierIndex serialises
    writes and guards reads with its lock."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("key", stored=True, indexed=True, fast=True)
        builder.add_text_field("document_id", stored=True, tokenizer_name="raw")
        # The passage text, stored once (in the French field) and indexed twice.
        builder.add_text_field(_FR, stored=True, tokenizer_name=_FR, index_option="freq")
        builder.add_text_field(_EN, stored=False, tokenizer_name=_EN, index_option="freq")
        builder.add_bytes_field("meta", stored=True, indexed=False)
        self._schema = builder.build()
        exists = tantivy.Index.exists(str(path))
        self._index = (
            tantivy.Index.open(str(path)) if exists else tantivy.Index(self._schema, str(path))
        )
        for name, analyzer in ANALYZERS.items():
            self._index.register_tokenizer(name, analyzer)

    # ------------------------------------------------------------------ writes
    def add(self, rows: Iterable[StoredPassage]) -> None:
        """Add passages and commit (Tantivy's commit is atomic: all or none)."""
        writer = self._index.writer(_WRITER_HEAP, 1)
        try:
            for row in rows:
                doc = tantivy.Document()
                doc.add_integer("key", row.key)
                doc.add_text("document_id", row.document_id)
                doc.add_text(_FR, row.text)
                doc.add_text(_EN, row.text)
                if row.label:  # "Article 1240", "§ 12": searchable as words of the passage
                    doc.add_text(_FR, row.label)
                    doc.add_text(_EN, row.label)
                doc.add_bytes("meta", _meta(row))
                writer.add_document(doc)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
        self._index.reload()

    def delete_documents(self, document_ids: Iterable[str]) -> None:
        writer = self._index.writer(_WRITER_HEAP, 1)
        try:
            for document_id in document_ids:
                writer.delete_documents_by_term("document_id", document_id)
            writer.commit()
        finally:
            writer.wait_merging_threads()
        self._index.reload()

    # ------------------------------------------------------------------- reads
    def search(self, terms: dict[str, list[str]], limit: int) -> list[tuple[int, float]]:
        """(key, BM25 score) of the best passages matching any term."""
        clauses = [
            (Occur.Should, Query.term_query(self._schema, field, term))
            for field, words in terms.items()
            for term in words
        ]
        if not clauses:
            return []
        searcher = self._index.searcher()
        result = searcher.search(Query.boolean_query(clauses), limit=limit, count=False)
        return [(int(searcher.doc(a)["key"][0]), float(s)) for s, a in result.hits]

    def coverage(self, terms: dict[str, list[str]]) -> float:
        """The share of the query's terms that occur in the index at all (best of the two
        analyzers): ~1 for a question in the documents' vocabulary, ~0 for one in another
        language, whose BM25 list is then noise."""
        searcher = self._index.searcher()
        shares = [
            sum(1 for term in words if searcher.doc_freq(field, term) > 0) / len(words)
            for field, words in terms.items()
            if words
        ]
        return max(shares, default=0.0)

    def fetch(self, keys: Sequence[int]) -> dict[int, StoredPassage]:
        """The stored passages with these keys."""
        if not keys:
            return {}
        searcher = self._index.searcher()
        query = Query.term_set_query(self._schema, "key", list(keys))
        result = searcher.search(query, limit=len(keys), count=False)
        out: dict[int, StoredPassage] = {}
        for _, address in result.hits:
            doc = searcher.doc(address)
            row = _from_doc(doc)
            out[row.key] = row
        return out

    def num_passages(self) -> int:
        return int(self._index.searcher().num_docs)


def _meta(row: StoredPassage) -> bytes:
    return json.dumps(
        {
            "passage_id": row.passage_id,
            "ordinal": row.ordinal,
            "page": row.page,
            "paragraph": row.paragraph,
            "label": row.label,
            "char_start": row.char_start,
            "char_end": row.char_end,
        }
    ).encode()


def _from_doc(doc: Any) -> StoredPassage:
    meta = json.loads(bytes(doc["meta"][0]))
    return StoredPassage(
        key=int(doc["key"][0]),
        passage_id=meta["passage_id"],
        document_id=doc["document_id"][0],
        ordinal=int(meta["ordinal"]),
        page=int(meta["page"]),
        paragraph=meta["paragraph"],
        label=meta["label"],
        char_start=int(meta["char_start"]),
        char_end=int(meta["char_end"]),
        text=doc[_FR][0],
    )
