"""Schema of the dossier and document tables (applied with the rest by `Database`).

A dossier records the embedding model and dimension its vectors were made with, so a
change of model re-indexes its documents instead of mixing vectors of two models.
A document row is the ingestion job's state: `status` (queued → extracting →
embedding → ready, or failed), the current `stage` with `done`/`total`, and what the
extraction found. Passages and vectors live in the dossier's retrieval index on disk
(documents/index.py), not here: see docs/dossiers.md for why.
"""

from __future__ import annotations

DOCUMENT_STATUSES = ("queued", "extracting", "embedding", "ready", "failed")

DOSSIER_SCHEMA: tuple[str, ...] = (
    "DEFINE TABLE IF NOT EXISTS dossier SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS name ON dossier TYPE string",
    "DEFINE FIELD IF NOT EXISTS created_at ON dossier TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS updated_at ON dossier TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS embedding_model ON dossier TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS dimension ON dossier TYPE option<int>",
    "DEFINE INDEX IF NOT EXISTS dossier_updated_at ON dossier FIELDS updated_at",
    "DEFINE TABLE IF NOT EXISTS document SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS dossier_id ON document TYPE string",
    "DEFINE FIELD IF NOT EXISTS filename ON document TYPE string",
    "DEFINE FIELD IF NOT EXISTS format ON document TYPE string",
    "DEFINE FIELD IF NOT EXISTS status ON document TYPE string"
    f" ASSERT $value IN {list(DOCUMENT_STATUSES)!r}",
    "DEFINE FIELD IF NOT EXISTS stage ON document TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS done ON document TYPE int DEFAULT 0",
    "DEFINE FIELD IF NOT EXISTS total ON document TYPE int DEFAULT 0",
    "DEFINE FIELD IF NOT EXISTS progress ON document TYPE float DEFAULT 0.0",
    "DEFINE FIELD IF NOT EXISTS pages ON document TYPE option<int>",
    "DEFINE FIELD IF NOT EXISTS passages ON document TYPE option<int>",
    "DEFINE FIELD IF NOT EXISTS size_bytes ON document TYPE int",
    "DEFINE FIELD IF NOT EXISTS sha256 ON document TYPE string",
    "DEFINE FIELD IF NOT EXISTS ocr_pages ON document TYPE array<int> DEFAULT []",
    "DEFINE FIELD IF NOT EXISTS no_text_pages ON document TYPE array<int> DEFAULT []",
    "DEFINE FIELD IF NOT EXISTS error_code ON document TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS error_detail ON document TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS error_fr ON document TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS error_en ON document TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS embedding_model ON document TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS created_at ON document TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS updated_at ON document TYPE datetime",
    "DEFINE INDEX IF NOT EXISTS document_dossier ON document FIELDS dossier_id, created_at",
    "DEFINE INDEX IF NOT EXISTS document_sha256 ON document FIELDS dossier_id, sha256",
    "DEFINE INDEX IF NOT EXISTS document_status ON document FIELDS status",
)

# The structure of a document read as a court decision (store/judgments.py): one row per
# document, keyed by the document's id, written by its ingestion job. `data` is the
# Judgment's JSON (judgments/model.py `to_dict`), kept as a string: its shape is the
# API contract, validated by the parser's types, not by the database.
JUDGMENT_SCHEMA: tuple[str, ...] = (
    "DEFINE TABLE IF NOT EXISTS judgment SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS dossier_id ON judgment TYPE string",
    "DEFINE FIELD IF NOT EXISTS is_judgment ON judgment TYPE bool",
    "DEFINE FIELD IF NOT EXISTS data ON judgment TYPE string",
    "DEFINE FIELD IF NOT EXISTS updated_at ON judgment TYPE datetime",
    "DEFINE INDEX IF NOT EXISTS judgment_dossier ON judgment FIELDS dossier_id",
)
