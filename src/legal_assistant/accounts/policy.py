"""The access policy — the one place that decides what a principal may do.

Routes never check access by hand: they take what they work on through one of these
FastAPI dependencies, which has already decided, so a handler never holds an object its
caller may not see.

* `DossierRead` / `DossierEdit` / `DossierOwner` (path parameter `dossier_id`): the
  dossier, if the principal is at least a reader (search, read, ask, brief) / an editor
  (also upload and delete documents) / its owner (rename, delete, share). Admins act as
  owners of every dossier.
* `ConversationOwn` (path parameter `conversation_id`): conversations belong to their
  author (and admins); one in a dossier also needs read access to that dossier.
* `ChatAccess`: the same rules for the `conversation_id` / `dossier_id` named in a chat
  turn's body.
* `Admin`: users, the audit log, engine management (start, stop, install, pull, remove),
  engine logs and `/metrics`.
* `visible_dossiers(principal)` / `conversation_owner_filter(principal)`: the filters of
  every list, applied in the query.
* `check_model(principal, model_id)`: a key's model allowlist (the gateways answer the
  refusal in their protocol's shape).

What the principal may not know exists is answered 404 — the same answer as for an id
that exists nowhere, so guessing ids learns nothing; what they may see but not change is
403. Every decision is audited in accounts mode (denials included). With
`AUTH_MODE=none` the local principal is an admin: everything that exists is allowed, as
before accounts existed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from legal_assistant.accounts import audit, ownership
from legal_assistant.accounts.ownership import DossierRole
from legal_assistant.accounts.principal import Principal, principal_of
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store import dossiers as dossier_store
from legal_assistant.store.dossiers import DossierPublic

_RANK: dict[str, int] = {"reader": 1, "editor": 2, "owner": 3}
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _state(request: Request) -> Any:
    return request.app.state.la


def _accounts_on(request: Request) -> bool:
    accounts = getattr(_state(request), "accounts", None)
    return bool(accounts is not None and accounts.enabled)


def action_of(request: Request) -> str:
    """What the audit log calls this request."""
    path, method = request.url.path, request.method
    if method == "DELETE":
        return "delete"
    if path.endswith("/search"):
        return "search"
    if path.endswith("/file"):
        return "download"
    if "/brief" in path:
        return "brief"
    if path.endswith("/members") and method == "PUT":
        return "share"
    return "read" if method in _SAFE else "write"


async def note(request: Request, outcome: audit.Outcome, action: str | None = None) -> None:
    """Record this request in the audit log (accounts mode only)."""
    if not _accounts_on(request):
        return
    client = request.client.host if request.client else None
    await audit.record(
        _state(request).db,
        user=principal_of(request).username,
        action=action or action_of(request),
        resource=request.url.path,
        outcome=outcome,
        address=client,
    )


def dossier_not_found(dossier_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"dossier {dossier_id[:64]!r}",
        message_fr="❌ Dossier introuvable.",
        message_en="❌ Dossier not found.",
    )


def conversation_not_found(conversation_id: str) -> LegalAssistantError:
    return LegalAssistantError(
        "not_found",
        f"conversation {conversation_id[:64]!r}",
        message_fr="❌ Conversation introuvable.",
        message_en="❌ Conversation not found.",
    )


def forbidden(what: str) -> LegalAssistantError:
    return LegalAssistantError("forbidden", what)


# --------------------------------------------------------------------------- principal
def current_principal(request: Request) -> Principal:
    return principal_of(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def require_admin(request: Request) -> Principal:
    principal = principal_of(request)
    if not principal.is_admin:
        await note(request, "denied")
        raise forbidden("administrators only")
    return principal


Admin = Depends(require_admin)
AdminPrincipal = Annotated[Principal, Depends(require_admin)]


async def _engine_start(request: Request) -> None:
    """Starting an engine is management (admins), except a warm-up (`"warm": true`): the
    UI asks for it when anyone picks a model, and a chat would start it anyway."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("warm") is True:
        return
    await require_admin(request)


EngineStart = Depends(_engine_start)


# --------------------------------------------------------------------------- dossiers
async def role_in_dossier(request: Request, dossier_id: str) -> DossierRole | None:
    """The principal's role in an existing dossier (admins: owner), None when none."""
    principal = principal_of(request)
    if principal.is_admin:
        return "owner"
    return await ownership.dossier_role(_state(request).db, dossier_id, principal.user_id)


async def dossier_access(request: Request, dossier_id: str, need: DossierRole) -> DossierPublic:
    dossier = await dossier_store.get_dossier(_state(request).db, dossier_id)
    role = await role_in_dossier(request, dossier_id) if dossier is not None else None
    if dossier is None or role is None:
        if dossier is not None:
            await note(request, "denied")
        raise dossier_not_found(dossier_id)
    if _RANK[role] < _RANK[need]:
        await note(request, "denied")
        raise forbidden(f"needs the {need} role in this dossier (you are {role})")
    await note(request, "ok")
    return dossier


async def _reader(request: Request, dossier_id: str) -> DossierPublic:
    return await dossier_access(request, dossier_id, "reader")


async def _editor(request: Request, dossier_id: str) -> DossierPublic:
    return await dossier_access(request, dossier_id, "editor")


async def _owner(request: Request, dossier_id: str) -> DossierPublic:
    return await dossier_access(request, dossier_id, "owner")


DossierRead = Annotated[DossierPublic, Depends(_reader)]
DossierEdit = Annotated[DossierPublic, Depends(_editor)]
DossierOwner = Annotated[DossierPublic, Depends(_owner)]


async def visible_dossiers(request: Request) -> list[str] | None:
    """The ids of the dossiers the principal may see; None = all of them (admins)."""
    principal = principal_of(request)
    if principal.is_admin:
        return None
    return await ownership.visible_dossier_ids(_state(request).db, principal.user_id)


VisibleDossiers = Annotated[list[str] | None, Depends(visible_dossiers)]


# --------------------------------------------------------------------------- conversations
async def conversation_access(request: Request, conversation_id: str) -> str:
    principal = principal_of(request)
    found = await ownership.conversation_owner(_state(request).db, conversation_id)
    allowed = found is not None and (principal.is_admin or found[0] == principal.user_id)
    if allowed and found is not None and found[1] is not None:
        allowed = await role_in_dossier(request, found[1]) is not None
    if not allowed:
        if found is not None:
            await note(request, "denied")
        raise conversation_not_found(conversation_id)
    await note(request, "ok")
    return conversation_id


async def _conversation(request: Request, conversation_id: str) -> str:
    return await conversation_access(request, conversation_id)


ConversationOwn = Annotated[str, Depends(_conversation)]

# The dependencies that decide on one dossier or conversation: a route with a
# `{dossier_id}` or `{conversation_id}` in its path must depend on one of them (the
# authorisation sweep, tests/accounts/test_sweep.py, checks the app's route table).
RESOURCE_GUARDS = frozenset({_reader, _editor, _owner, _conversation})


def conversation_owner_filter(principal: Principal) -> str | None:
    """Whose conversations a list shows: the principal's own; None = everyone's (admins)."""
    return None if principal.is_admin else principal.user_id


async def _json_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object (parsed again by the route: same bytes, cached), or None
    — the route's own validation then answers 400."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _check_body_model(request: Request, body: dict[str, Any]) -> None:
    """A key's model allowlist applies to the model a chat turn or a brief names."""
    model_id = body.get("model_id")
    if principal_of(request).models is None:
        return
    if not isinstance(model_id, str) or not model_id:
        model_id = _state(request).settings.default_model
    check_model(principal_of(request), model_id)


async def _body_model(request: Request) -> None:
    body = await _json_body(request)
    if body is not None:
        _check_body_model(request, body)


BodyModel = Depends(_body_model)


async def _chat_access(request: Request) -> None:
    """A chat turn may continue only the principal's conversation, ground only on a
    dossier they may read, and use only a model their key allows."""
    body = await _json_body(request)
    if body is None:
        return
    _check_body_model(request, body)
    conversation_id = body.get("conversation_id")
    if isinstance(conversation_id, str):
        await conversation_access(request, conversation_id)
    dossier_id = body.get("dossier_id")
    if isinstance(dossier_id, str):
        await dossier_access(request, dossier_id, "reader")


ChatAccess = Depends(_chat_access)


# --------------------------------------------------------------------------- models
def model_allowed(principal: Principal, model_ids: list[str]) -> bool:
    """Whether a key's allowlist covers the model (any of its names: our id, the name the
    client used). No allowlist: every model."""
    if principal.models is None:
        return True
    return any(m in principal.models for m in model_ids)


def check_model(principal: Principal, *model_ids: str) -> None:
    if not model_allowed(principal, list(model_ids)):
        raise LegalAssistantError(
            "forbidden",
            f"this API key may not use {model_ids[0][:120]!r}",
            message_fr=f"⛔ Cette clé d'API n'autorise pas le modèle {model_ids[0][:120]}.",
            message_en=f"⛔ This API key does not allow the model {model_ids[0][:120]}.",
        )
