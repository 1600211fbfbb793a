"""The audit log for administrators: `GET /api/audit?user=NAME&since=ISO&limit=N`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from legal_assistant.accounts import audit
from legal_assistant.accounts.audit import AuditEntry
from legal_assistant.accounts.policy import Admin
from legal_assistant.api.deps import ApiKey, State

router = APIRouter(dependencies=[ApiKey, Admin])


class AuditList(BaseModel):
    entries: list[AuditEntry]


@router.get("/api/audit")
async def audit_log(
    state: State,
    user: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_ENTRIES)] = 200,
) -> AuditList:
    """Newest first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return AuditList(entries=await audit.entries(state.db, user=user, since=since, limit=limit))
