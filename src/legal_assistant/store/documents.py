"""Documents of a dossier: one row per uploaded file, which is also its ingestion job.

The row is written by one owner at a time — the upload route creates it `queued`, then
only the ingestion worker that runs its job moves it forward (documents/ingest.py) — so
progress updates need no transaction. Failure reasons are stored in French and English
with their code, so a client sees them in its language long after the job ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.store.records import is_valid_id, iso, record_key, rows, timestamp
from legal_assistant.store.surreal import Database

DOCUMENT_TABLE = "document"
Status = Literal["queued", "extracting", "embedding", "ready", "failed"]
# A job in one of these states was interrupted if the backend is (re)starting.
UNFINISHED: tuple[Status, ...] = ("queued", "extracting", "embedding")


class DocumentError(BaseModel):
    """Why a document failed: `message` in the request's language, and both."""

    code: str
    message: str
    message_fr: str = ""
    message_en: str = ""
    detail: str = ""


class DocumentPublic(BaseModel):
    """A document as the API shows it. `progress` is 0..1 over the whole job."""

    id: str
    dossier_id: str
    filename: str
    format: str
    status: Status
    stage: str | None = None
    done: int = 0
    total: int = 0
    progress: float = 0.0
    pages: int | None = None
    passages: int | None = None
    size_bytes: int
    sha256: str
    ocr_pages: list[int] = []  # pages whose text came from OCR
    no_text_pages: list[int] = []  # pages kept without text (scan, OCR unavailable)
    error: DocumentError | None = None
    embedding_model: str | None = None
    created_at: str
    updated_at: str
    duplicate: bool = False  # set on an upload answered with an existing document


def document_rid(document_id: str) -> RecordID:
    return RecordID(DOCUMENT_TABLE, document_id)


def _to_document(row: Mapping[str, Any], language: Language) -> DocumentPublic:
    error = None
    if row.get("error_code"):
        message = row.get("error_fr") if language == "fr" else row.get("error_en")
        error = DocumentError(
            code=row["error_code"],
            message=message or "",
            message_fr=row.get("error_fr") or "",
            message_en=row.get("error_en") or "",
            detail=row.get("error_detail") or "",
        )
    return DocumentPublic(
        id=record_key(row["id"]),
        dossier_id=row["dossier_id"],
        filename=row.get("filename", ""),
        format=row.get("format", ""),
        status=row["status"],
        stage=row.get("stage"),
        done=int(row.get("done") or 0),
        total=int(row.get("total") or 0),
        progress=float(row.get("progress") or 0.0),
        pages=row.get("pages"),
        passages=row.get("passages"),
        size_bytes=int(row.get("size_bytes") or 0),
        sha256=row.get("sha256", ""),
        ocr_pages=list(row.get("ocr_pages") or []),
        no_text_pages=list(row.get("no_text_pages") or []),
        error=error,
        embedding_model=row.get("embedding_model"),
        created_at=iso(row.get("created_at")),
        updated_at=iso(row.get("updated_at")),
    )


async def create_document(
    db: Database,
    *,
    document_id: str,
    dossier_id: str,
    filename: str,
    format: str,
    size_bytes: int,
    sha256: str,
    language: Language = "fr",
) -> DocumentPublic:
    now = timestamp()
    data = {
        "dossier_id": dossier_id,
        "filename": filename,
        "format": format,
        "status": "queued",
        "size_bytes": size_bytes,
        "sha256": sha256,
        "created_at": now,
        "updated_at": now,
    }
    results = await db.query(
        "CREATE $id CONTENT $data", {"id": document_rid(document_id), "data": data}
    )
    return _to_document(rows(results[-1])[0], language)


async def get_document(
    db: Database, dossier_id: str, document_id: str, language: Language = "fr"
) -> DocumentPublic | None:
    """The document, only if it belongs to `dossier_id`."""
    if not (is_valid_id(dossier_id) and is_valid_id(document_id)):
        return None
    results = await db.query(
        "SELECT * FROM $id WHERE dossier_id = $dossier",
        {"id": document_rid(document_id), "dossier": dossier_id},
    )
    found = rows(results[-1])
    return _to_document(found[0], language) if found else None


async def list_documents(
    db: Database, dossier_id: str, language: Language = "fr"
) -> list[DocumentPublic]:
    """Oldest first (the order they were added)."""
    results = await db.query(
        "SELECT * FROM document WHERE dossier_id = $dossier ORDER BY created_at ASC, id ASC",
        {"dossier": dossier_id},
    )
    return [_to_document(r, language) for r in rows(results[-1])]


async def document_names(db: Database, dossier_id: str) -> dict[str, str]:
    """{document id: file name} of the dossier: what a search shows beside its hits (two
    fields, not whole rows: it runs on every search)."""
    results = await db.query(
        "SELECT id, filename FROM document WHERE dossier_id = $dossier", {"dossier": dossier_id}
    )
    return {record_key(r["id"]): str(r.get("filename", "")) for r in rows(results[-1])}


async def find_by_sha256(db: Database, dossier_id: str, sha256: str) -> list[DocumentPublic]:
    results = await db.query(
        "SELECT * FROM document WHERE dossier_id = $dossier AND sha256 = $sha"
        " ORDER BY created_at ASC",
        {"dossier": dossier_id, "sha": sha256},
    )
    return [_to_document(r, "fr") for r in rows(results[-1])]


async def unfinished_documents(db: Database) -> list[DocumentPublic]:
    """Every document whose job had not ended (oldest first): resumed at start-up."""
    results = await db.query(
        "SELECT * FROM document WHERE status IN $statuses ORDER BY created_at ASC",
        {"statuses": list(UNFINISHED)},
    )
    return [_to_document(r, "fr") for r in rows(results[-1])]


async def update_document(db: Database, document_id: str, **changes: Any) -> DocumentPublic | None:
    """Set the given fields (names from this module's callers only, values as variables)."""
    changes["updated_at"] = timestamp()
    assignments = ", ".join(f"{name} = ${name}" for name in changes)
    results = await db.query(
        f"UPDATE $id SET {assignments} RETURN AFTER", {"id": document_rid(document_id), **changes}
    )
    found = rows(results[-1])
    return _to_document(found[0], "fr") if found else None


async def set_progress(
    db: Database,
    document_id: str,
    *,
    status: Status,
    stage: str,
    done: int,
    total: int,
    progress: float,
) -> DocumentPublic | None:
    return await update_document(
        db,
        document_id,
        status=status,
        stage=stage,
        done=done,
        total=total,
        progress=round(progress, 4),
    )


async def mark_failed(
    db: Database, document_id: str, err: LegalAssistantError
) -> DocumentPublic | None:
    return await update_document(
        db,
        document_id,
        status="failed",
        stage="failed",
        error_code=err.code,
        error_detail=err.detail[:1000],
        error_fr=err.message("fr"),
        error_en=err.message("en"),
    )


async def requeue(db: Database, document_ids: Iterable[str]) -> None:
    """Back to `queued` with the outcome of the previous run cleared (re-index, resume)."""
    for document_id in document_ids:
        await update_document(
            db,
            document_id,
            status="queued",
            stage="queued",
            done=0,
            total=0,
            progress=0.0,
            error_code=None,
            error_detail=None,
            error_fr=None,
            error_en=None,
        )


async def delete_document(db: Database, document_id: str) -> bool:
    if not is_valid_id(document_id):
        return False
    results = await db.query("DELETE $id RETURN BEFORE", {"id": document_rid(document_id)})
    return bool(rows(results[-1]))
