"""The structure of each document read as a court decision (judgments/parse.py).

One row per ingested document, keyed by the document's id, written by the ingestion job
that read it (so the row is as fresh as the document's passages) and deleted with the
document or its dossier. A document that is not a judgment has a row too
(`is_judgment` false): "not a judgment" is an answer, not a missing one.
"""

from __future__ import annotations

import json

from surrealdb import RecordID

from legal_assistant.judgments.model import Judgment
from legal_assistant.store.records import is_valid_id, rows, timestamp
from legal_assistant.store.surreal import Database

JUDGMENT_TABLE = "judgment"


def _rid(document_id: str) -> RecordID:
    return RecordID(JUDGMENT_TABLE, document_id)


async def save_judgment(
    db: Database, *, dossier_id: str, document_id: str, judgment: Judgment
) -> None:
    data = {
        "dossier_id": dossier_id,
        "is_judgment": judgment.is_judgment,
        "data": json.dumps(judgment.to_dict(), ensure_ascii=False),
        "updated_at": timestamp(),
    }
    await db.query("UPSERT $id CONTENT $data", {"id": _rid(document_id), "data": data})


async def get_judgment(db: Database, dossier_id: str, document_id: str) -> Judgment | None:
    """The stored structure, only if the document belongs to `dossier_id`; None if the
    document was never read (not ingested yet, or ingested before this existed)."""
    if not (is_valid_id(dossier_id) and is_valid_id(document_id)):
        return None
    results = await db.query(
        "SELECT * FROM $id WHERE dossier_id = $dossier",
        {"id": _rid(document_id), "dossier": dossier_id},
    )
    found = rows(results[-1])
    if not found:
        return None
    return Judgment.from_dict(json.loads(found[0]["data"]))


async def delete_judgment(db: Database, document_id: str) -> None:
    if is_valid_id(document_id):
        await db.query("DELETE $id", {"id": _rid(document_id)})
