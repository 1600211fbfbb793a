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
from legal_assistant.errors import LegalAssistantError

router = APIRouter(dependencies=[ApiKey, Admin])

# Who the log names: usernames, and `anonymous`, `cli`, `api-key`.
USERNAME = r"^[A-Za-z0-9._-]+$"


class AuditList(BaseModel):
    entries: list[AuditEntry]


@router.get("/api/audit")
async def audit_log(
    state: State,
    user: Annotated[str | None, Query(min_length=1, max_length=64, pattern=USERNAME)] = None,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 date or date-time (UTC if naive)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_ENTRIES)] = 200,
) -> AuditList:
    """Newest first."""
    return AuditList(
        entries=await audit.entries(state.db, user=user, since=_moment(since), limit=limit)
    )


def _moment(text: str | None) -> datetime | None:
    """ISO 8601 only (a bare number is not a date here, whatever pydantic would make of it)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise LegalAssistantError(
            "bad_request",
            f"since: not an ISO 8601 date {text[:40]!r}",
            message_fr="❌ `since` : date ISO 8601 attendue (ex. 2026-12-01T09:00:00Z).",
            message_en="❌ `since`: an ISO 8601 date is expected (e.g. 2026-12-01T09:00:00Z).",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
