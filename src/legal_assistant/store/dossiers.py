"""Dossiers (case files): a name, the embedding model their vectors were made with, and
— through `dossier_id` — their documents and conversations.

Same conventions as `store.conversations`: ids are 32 hex characters we generate, a
malformed id is "not found" before any query is built, values travel as variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.store.records import (
    is_valid_id,
    iso,
    new_id,
    record_key,
    rows,
    timestamp,
)
from legal_assistant.store.surreal import Database

DOSSIER_TABLE = "dossier"
MAX_NAME_CHARS = 200


class DossierPublic(BaseModel):
    """A dossier as the API shows it; `documents` counts its documents (any status)."""

    id: str
    name: str
    created_at: str
    updated_at: str
    documents: int = 0
    embedding_model: str | None = None
    dimension: int | None = None


def dossier_rid(dossier_id: str) -> RecordID:
    return RecordID(DOSSIER_TABLE, dossier_id)


def _to_dossier(row: Mapping[str, Any], documents: int = 0) -> DossierPublic:
    return DossierPublic(
        id=record_key(row["id"]),
        name=row.get("name", ""),
        created_at=iso(row.get("created_at")),
        updated_at=iso(row.get("updated_at")),
        documents=documents,
        embedding_model=row.get("embedding_model"),
        dimension=row.get("dimension"),
    )


async def _document_counts(db: Database, dossier_ids: list[str]) -> dict[str, int]:
    if not dossier_ids:
        return {}
    results = await db.query(
        "SELECT dossier_id, count() AS n FROM document WHERE dossier_id IN $ids"
        " GROUP BY dossier_id",
        {"ids": dossier_ids},
    )
    return {str(r["dossier_id"]): int(r["n"]) for r in rows(results[-1])}


async def create_dossier(
    db: Database,
    *,
    name: str,
    embedding_model: str | None,
    dimension: int | None,
    owner_id: str | None = None,
) -> DossierPublic:
    """`owner_id`: who made it (accounts/policy.py decides who else may see it)."""
    now = timestamp()
    data = {
        "name": name,
        "owner_id": owner_id,
        "created_at": now,
        "updated_at": now,
        "embedding_model": embedding_model,
        "dimension": dimension,
    }
    results = await db.query(
        "CREATE $id CONTENT $data", {"id": dossier_rid(new_id()), "data": data}
    )
    return _to_dossier(rows(results[-1])[0])


async def get_dossier(
    db: Database, dossier_id: str, *, count_documents: bool = True
) -> DossierPublic | None:
    """The dossier; `count_documents=False` leaves `documents` at 0 and saves a query
    (for callers that only need it to exist, or its embedding model)."""
    if not is_valid_id(dossier_id):
        return None
    results = await db.query("SELECT * FROM $id", {"id": dossier_rid(dossier_id)})
    found = rows(results[-1])
    if not found:
        return None
    counts = await _document_counts(db, [dossier_id]) if count_documents else {}
    return _to_dossier(found[0], counts.get(dossier_id, 0))


async def list_dossiers(db: Database, *, only: list[str] | None = None) -> list[DossierPublic]:
    """Most recently updated first; only the dossiers of `only` when given (the ids the
    access policy lets the caller see: the filter is in the query)."""
    if only is None:
        results = await db.query("SELECT * FROM dossier ORDER BY updated_at DESC, id DESC")
    else:
        results = await db.query(
            "SELECT * FROM dossier WHERE id IN $ids ORDER BY updated_at DESC, id DESC",
            {"ids": [dossier_rid(d) for d in only if is_valid_id(d)]},
        )
    found = rows(results[-1])
    counts = await _document_counts(db, [record_key(r["id"]) for r in found])
    return [_to_dossier(r, counts.get(record_key(r["id"]), 0)) for r in found]


async def rename_dossier(db: Database, dossier_id: str, name: str) -> DossierPublic | None:
    if not is_valid_id(dossier_id):
        return None
    results = await db.query(
        "UPDATE $id SET name = $name, updated_at = $now RETURN AFTER",
        {"id": dossier_rid(dossier_id), "name": name, "now": timestamp()},
    )
    if not rows(results[-1]):
        return None
    return await get_dossier(db, dossier_id)


async def touch_dossier(db: Database, dossier_id: str) -> None:
    """Activity in the dossier (a document added or removed) moves it up the list."""
    await db.query(
        "UPDATE $id SET updated_at = $now RETURN NONE",
        {"id": dossier_rid(dossier_id), "now": timestamp()},
    )


async def set_embedding_model(
    db: Database, dossier_id: str, embedding_model: str, dimension: int
) -> None:
    await db.query(
        "UPDATE $id SET embedding_model = $model, dimension = $dim RETURN NONE",
        {"id": dossier_rid(dossier_id), "model": embedding_model, "dim": dimension},
    )


async def delete_dossier(db: Database, dossier_id: str) -> bool:
    """Delete the dossier, its document rows, its conversations and their messages in one
    transaction (its files and index are removed by the ingestion service). False if it
    did not exist."""
    if not is_valid_id(dossier_id):
        return False
    results = await db.query(
        "BEGIN TRANSACTION;"
        " LET $convs = (SELECT VALUE id FROM conversation WHERE dossier_id = $key);"
        " DELETE message WHERE conversation IN $convs;"
        " DELETE conversation WHERE dossier_id = $key;"
        " DELETE document WHERE dossier_id = $key;"
        " DELETE judgment WHERE dossier_id = $key;"
        " DELETE $id RETURN BEFORE;"
        " COMMIT TRANSACTION;",
        {"id": dossier_rid(dossier_id), "key": dossier_id},
    )
    return bool(rows(results[-1]))
