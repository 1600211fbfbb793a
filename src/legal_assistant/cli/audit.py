"""`legal-assistant audit`: the audit log in the terminal, newest first — from the
running backend (`GET /api/audit`, as the CLI's admin) or, backend stopped, straight from
the data directory (cli/users.py explains the two paths)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from legal_assistant.cli.common import fail, load_settings, out
from legal_assistant.cli.users import URL, api, run

if TYPE_CHECKING:
    from legal_assistant.store import Database

MAX_ENTRIES = 1000  # accounts.audit.MAX_ENTRIES (not imported: the CLI starts without the DB)


def audit_command(
    user: str | None = typer.Option(None, "--user", help="Only this user's entries."),
    since_text: str | None = typer.Option(None, "--since", help="ISO date or time (UTC)."),
    limit: int = typer.Option(200, "--limit", min=1, max=MAX_ENTRIES),
    url: str | None = URL,
) -> None:
    """The audit log, newest first: logins, reads, searches, downloads, briefs, deletions,
    denied attempts."""
    settings = load_settings()
    try:
        since = datetime.fromisoformat(since_text) if since_text else None
    except ValueError:
        raise fail(f"--since: not an ISO date or time: {since_text!r}") from None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def direct(db: Database) -> list[dict[str, Any]]:
        from legal_assistant.accounts import audit as audit_log

        found = await audit_log.entries(db, user=user, since=since, limit=limit)
        return [e.model_dump() for e in found]

    async def remote() -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if user:
            params["user"] = user
        if since:
            params["since"] = since.isoformat()
        data = await api(settings, url, "GET", "/api/audit", params=params)
        return list(data["entries"])

    entries = run(settings, url, direct, remote)
    table = Table("at", "user", "action", "resource", "outcome", "address")
    for e in entries:
        style = {"denied": "red", "failed": "yellow"}.get(e["outcome"], "")
        table.add_row(
            e["at"][:23],
            e["user"],
            e["action"],
            e["resource"],
            f"[{style}]{e['outcome']}[/{style}]" if style else e["outcome"],
            e.get("address") or "",
        )
    out.print(table)
