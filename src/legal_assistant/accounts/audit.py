"""The audit log: who signed in or failed to, who read, searched, downloaded, briefed or
deleted what, and every denied attempt.

Append-only: this module only inserts and reads, and the table itself refuses UPDATE and
DELETE (a SurrealDB event that throws, accounts/schema.py). Recorded in accounts mode
only — the single-user mode has nobody to tell apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.store.records import iso, new_id, rows, timestamp
from legal_assistant.store.surreal import Database

Outcome = Literal["ok", "denied", "failed"]
MAX_ENTRIES = 1000


class AuditEntry(BaseModel):
    at: str
    user: str
    action: str
    resource: str
    outcome: Outcome
    address: str | None = None


async def record(
    db: Database,
    *,
    user: str,
    action: str,
    resource: str,
    outcome: Outcome,
    address: str | None = None,
) -> None:
    data = {
        "at": timestamp(),
        "user": user,
        "action": action,
        "resource": resource[:300],
        "outcome": outcome,
        "address": address,
    }
    await db.query(
        "CREATE $id CONTENT $data RETURN NONE", {"id": RecordID("audit", new_id()), "data": data}
    )


async def entries(
    db: Database,
    *,
    user: str | None = None,
    since: datetime | None = None,
    limit: int = MAX_ENTRIES,
) -> list[AuditEntry]:
    """Newest first."""
    where: list[str] = []
    if user is not None:
        where.append("user = $user")
    if since is not None:
        where.append("at >= $since")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    results = await db.query(
        f"SELECT * FROM audit{clause} ORDER BY at DESC LIMIT $limit",
        {"user": user, "since": since, "limit": max(1, min(limit, MAX_ENTRIES))},
    )
    return [
        AuditEntry(
            at=iso(r["at"]),
            user=r["user"],
            action=r["action"],
            resource=r.get("resource", ""),
            outcome=r["outcome"],
            address=r.get("address"),
        )
        for r in rows(results[-1])
    ]
