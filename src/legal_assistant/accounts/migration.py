"""From one user to accounts: what the single-user installation made — dossiers and
conversations with no owner, or owned by the local user of `AUTH_MODE=none` — is given
to the first admin (the earliest created, not disabled). Nothing is copied or deleted:
only `owner_id` is set. What the CLI (or the legacy API_KEY) created as an admin is
adopted the same way. Idempotent; run when accounts mode starts and when an admin is
created, so the order "turn accounts on, then add the admin" works as well as the other.
"""

from __future__ import annotations

from legal_assistant.accounts.principal import LOCAL
from legal_assistant.accounts.users import first_admin
from legal_assistant.store.surreal import Database

# Principals that are not user accounts: the local user of AUTH_MODE=none, the CLI
# token's and the legacy API_KEY's administrators (accounts/service.py).
PSEUDO_OWNERS = (LOCAL.user_id, "cli", "api-key")


async def adopt_orphans(db: Database) -> int:
    """Give ownerless dossiers and conversations to the first admin; how many changed."""
    admin = await first_admin(db)
    if admin is None:
        return 0
    results = await db.query(
        "UPDATE dossier SET owner_id = $admin"
        " WHERE owner_id = NONE OR owner_id IN $nobody RETURN VALUE id;"
        " UPDATE conversation SET owner_id = $admin"
        " WHERE owner_id = NONE OR owner_id IN $nobody RETURN VALUE id;",
        {"admin": admin.id, "nobody": list(PSEUDO_OWNERS)},
    )
    return sum(len(r or []) for r in results)
