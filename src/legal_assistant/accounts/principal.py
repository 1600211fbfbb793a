"""Who is asking: the principal a request acts as.

Set on `request.state.principal` by the authentication dependency (accounts mode: a
session or an API key; `AUTH_MODE=none`: the local user, who owns everything). Other
modules read it through `principal_of` only — admission fairness keys its queues on
`user_id`, the access policy decides on all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.requests import HTTPConnection

Role = Literal["admin", "member"]
Scope = Literal["gateway", "read", "write"]
ALL_SCOPES: frozenset[str] = frozenset({"gateway", "read", "write"})


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    role: Role
    key_id: str | None = None  # set when the request came with a scoped API key
    scopes: frozenset[str] = ALL_SCOPES
    models: frozenset[str] | None = None  # a key's model allowlist; None = any model

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# AUTH_MODE=none (loopback, single user): one local user who may do everything.
LOCAL = Principal(user_id="local", username="local", role="admin")


def principal_of(conn: HTTPConnection) -> Principal:
    principal = getattr(conn.state, "principal", None)
    return principal if isinstance(principal, Principal) else LOCAL
