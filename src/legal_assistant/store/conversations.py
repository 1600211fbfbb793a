"""Conversations and their messages, stored in SurrealDB.

Plain async functions taking the `Database` first, so the API layer, the CLI and the
tests share one code path without a repository object to wire up.

Design choices, and why:

* IDs are the record keys we generate (`uuid4().hex`: 32 lowercase hex characters) and
  are exposed as plain strings. Anything else is refused before a query is built
  (`None` / `False` / `not_found`), so a hostile id can never reach SurrealQL; values are
  always bound as `$variables`, never formatted into the statement.
* Timestamps come from a process-wide clock that is strictly increasing at microsecond
  resolution, so messages written by one backend never tie on `created_at` and ordering
  by it is the insertion order even for 50 concurrent writers. The id breaks the (only
  theoretical) ties between processes. They are stored as SurrealDB datetimes (sortable,
  indexed) and exposed as ISO-8601 strings, which is what the HTTP API returns.
* Appending a message, bumping the conversation's `updated_at` and its denormalised
  `message_count` happen in ONE transaction that first checks the conversation exists:
  no orphan message if the conversation is deleted concurrently, no count drift.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel
from surrealdb import RecordID

from legal_assistant.errors import LegalAssistantError
from legal_assistant.store.records import is_valid_id, iso, new_id, record_key, rows, timestamp
from legal_assistant.store.surreal import Database, DatabaseError

Role = Literal["user", "assistant", "system"]
ROLES: frozenset[str] = frozenset(get_args(Role))

CONVERSATION_TABLE = "conversation"
MESSAGE_TABLE = "message"
MAX_LIST_LIMIT = 1000

_NOT_FOUND_THROW = "conversation_not_found"


class _Unset(enum.Enum):
    """Marks an `update_*` argument that was not given (None means "clear it")."""

    UNSET = "UNSET"


UNSET = _Unset.UNSET


class ConversationPublic(BaseModel):
    """A conversation as the API shows it (without its messages)."""

    id: str
    title: str
    language: str
    model_id: str | None = None
    created_at: str
    updated_at: str
    message_count: int = 0
    dossier_id: str | None = None  # a dossier's conversation: answers grounded in it


class MessagePublic(BaseModel):
    """One message. `partial` is True while an answer streams or after it was cut off."""

    id: str
    conversation_id: str
    role: Role
    content: str
    created_at: str
    model_id: str | None = None
    provider: str | None = None
    engine_port: int | None = None
    partial: bool = False
    error_code: str | None = None
    timings: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    # A grounded answer: the numbered passages it was given, and the numbers it cited
    # that were among them (chat/grounding.py).
    sources: list[dict[str, Any]] | None = None
    citations: list[int] | None = None
    # How an answer ended when not by itself ("repetition": a loop was cut, "max_tokens"),
    # and the extractive answer a grounded turn added when the model cited nothing
    # (`extract` = {"text", "sources"}, `fallback` = "extractive"): docs/answers.md.
    stopped: str | None = None
    extract: dict[str, Any] | None = None
    fallback: str | None = None
    claims: list[dict[str, Any]] | None = None  # Claim.to_dict() of each statement


class ConversationDetail(ConversationPublic):
    """A conversation with its messages, oldest first."""

    messages: list[MessagePublic]


# --------------------------------------------------------------------------- record ids


def _conversation_rid(conversation_id: str) -> RecordID:
    return RecordID(CONVERSATION_TABLE, conversation_id)


def _message_rid(message_id: str) -> RecordID:
    return RecordID(MESSAGE_TABLE, message_id)


# --------------------------------------------------------------------------- row mapping


def _optional_object(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def _to_conversation(row: Mapping[str, Any]) -> ConversationPublic:
    return ConversationPublic(
        id=record_key(row["id"]),
        title=row.get("title", ""),
        language=row.get("language", ""),
        model_id=row.get("model_id"),
        created_at=iso(row.get("created_at")),
        updated_at=iso(row.get("updated_at")),
        message_count=int(row.get("message_count") or 0),
        dossier_id=row.get("dossier_id"),
    )


def _source(stored: Mapping[str, Any]) -> dict[str, Any]:
    # A None inside an object is not stored (NONE semantics): give the optional keys of a
    # source back, so a saved source reads exactly as the `sources` event sent it.
    return {"paragraph": None, "label": None, **stored}


def _to_message(row: Mapping[str, Any]) -> MessagePublic:
    return MessagePublic(
        id=record_key(row["id"]),
        conversation_id=record_key(row["conversation"]),
        role=row["role"],
        content=row.get("content", ""),
        created_at=iso(row.get("created_at")),
        model_id=row.get("model_id"),
        provider=row.get("provider"),
        engine_port=row.get("engine_port"),
        partial=bool(row.get("partial", False)),
        error_code=row.get("error_code"),
        timings=_optional_object(row.get("timings")),
        usage=_optional_object(row.get("usage")),
        sources=[_source(s) for s in row["sources"]] if row.get("sources") is not None else None,
        citations=list(row["citations"]) if row.get("citations") is not None else None,
        stopped=row.get("stopped"),
        extract=_optional_object(row.get("extract")),
        fallback=row.get("fallback"),
        claims=[_claim(c) for c in row["claims"]] if row.get("claims") is not None else None,
    )


def _claim(stored: Mapping[str, Any]) -> dict[str, Any]:
    # As for sources: a citation's None `reason` was not stored; give it back.
    return {**stored, "citations": [{"reason": None, **c} for c in stored["citations"]]}


# --------------------------------------------------------------------------- conversations


async def create_conversation(
    db: Database,
    *,
    title: str,
    language: str,
    model_id: str | None,
    dossier_id: str | None = None,
    owner_id: str | None = None,
) -> ConversationPublic:
    """Create an empty conversation (in a dossier when `dossier_id` is given), belonging
    to `owner_id` (its author)."""
    now = timestamp()
    data: dict[str, Any] = {
        "title": title,
        "language": language,
        "model_id": model_id,  # None is sent as NONE: the field is simply absent
        "dossier_id": dossier_id,
        "owner_id": owner_id,
        "created_at": now,
        "updated_at": now,
        "message_count": 0,
    }
    results = await db.query(
        "CREATE $id CONTENT $data", {"id": _conversation_rid(new_id()), "data": data}
    )
    return _to_conversation(rows(results[-1])[0])


async def conversation_exists(db: Database, conversation_id: str) -> bool:
    if not is_valid_id(conversation_id):
        return False
    results = await db.query("SELECT VALUE id FROM $id", {"id": _conversation_rid(conversation_id)})
    return bool(results[-1])


async def get_conversation(db: Database, conversation_id: str) -> ConversationDetail | None:
    """The conversation and all its messages (by `created_at`, then insertion), or None."""
    if not is_valid_id(conversation_id):
        return None
    # One transaction so the header and the messages are the same snapshot.
    results = await db.query(
        "BEGIN TRANSACTION;"
        " SELECT * FROM $id;"
        " SELECT * FROM message WHERE conversation = $id ORDER BY created_at ASC, id ASC;"
        " COMMIT TRANSACTION;",
        {"id": _conversation_rid(conversation_id)},
    )
    header = rows(results[0])
    if not header:
        return None
    conversation = _to_conversation(header[0])
    messages = [_to_message(row) for row in rows(results[1])]
    return ConversationDetail(**conversation.model_dump(), messages=messages)


async def list_conversations(
    db: Database, *, limit: int = 100, dossier_id: str | None = None, owner_id: str | None = None
) -> list[ConversationPublic]:
    """Most recently updated first, each with its `message_count`; only the dossier's
    conversations when `dossier_id` is given, only `owner_id`'s when given."""
    limit = min(int(limit), MAX_LIST_LIMIT)
    if limit <= 0:
        return []
    conditions = [
        clause
        for clause, value in (
            ("dossier_id = $dossier", dossier_id),
            ("owner_id = $owner", owner_id),
        )
        if value is not None
    ]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    results = await db.query(
        f"SELECT * FROM conversation{where} ORDER BY updated_at DESC, id DESC LIMIT $limit",
        {"limit": limit, "dossier": dossier_id, "owner": owner_id},
    )
    return [_to_conversation(row) for row in rows(results[-1])]


async def update_conversation(
    db: Database,
    conversation_id: str,
    *,
    title: str | _Unset = UNSET,
    model_id: str | _Unset | None = UNSET,
) -> ConversationPublic | None:
    """Rename a conversation or change its model; None if it does not exist.

    Does not bump `updated_at`: renaming is not activity in the conversation.
    """
    if not is_valid_id(conversation_id):
        return None
    changes: dict[str, Any] = {}
    if not isinstance(title, _Unset):
        changes["title"] = title
    if not isinstance(model_id, _Unset):
        changes["model_id"] = model_id
    rid = _conversation_rid(conversation_id)
    if not changes:
        results = await db.query("SELECT * FROM $id", {"id": rid})
    else:
        results = await db.query(_update_statement(changes), {"id": rid, **changes})
    found = rows(results[-1])
    return _to_conversation(found[0]) if found else None


async def delete_conversation(db: Database, conversation_id: str) -> bool:
    """Delete a conversation and all its messages; False if it did not exist."""
    if not is_valid_id(conversation_id):
        return False
    results = await db.query(
        "BEGIN TRANSACTION;"
        " DELETE message WHERE conversation = $id;"
        " DELETE $id RETURN BEFORE;"
        " COMMIT TRANSACTION;",
        {"id": _conversation_rid(conversation_id)},
    )
    return bool(rows(results[-1]))


# --------------------------------------------------------------------------- messages

# Appends atomically: refuses (THROW) if the conversation is gone, and never moves
# `updated_at` backwards when writers commit out of timestamp order.
_ADD_MESSAGE = f"""
BEGIN TRANSACTION;
IF (SELECT VALUE id FROM ONLY $conversation) = NONE {{ THROW "{_NOT_FOUND_THROW}" }};
UPDATE $conversation SET
    message_count += 1,
    updated_at = array::max([updated_at, $now])
    RETURN NONE;
CREATE $message CONTENT $data;
COMMIT TRANSACTION;
"""


async def add_message(
    db: Database,
    *,
    conversation_id: str,
    role: Role,
    content: str,
    model_id: str | None = None,
    provider: str | None = None,
    engine_port: int | None = None,
    partial: bool = False,
    error_code: str | None = None,
    timings: Mapping[str, Any] | None = None,
    usage: Mapping[str, Any] | None = None,
    sources: list[dict[str, Any]] | None = None,
    citations: list[int] | None = None,
    stopped: str | None = None,
    extract: Mapping[str, Any] | None = None,
    fallback: str | None = None,
    claims: list[dict[str, Any]] | None = None,
) -> MessagePublic:
    """Append a message and bump the conversation's `updated_at` and `message_count`.

    Raises `LegalAssistantError("not_found")` if the conversation does not exist (or the
    id is malformed), and `LegalAssistantError("bad_request")` for an unknown role.
    None values inside `timings`/`usage` are not stored (SurrealDB NONE semantics).
    """
    if not is_valid_id(conversation_id):
        raise LegalAssistantError("not_found", detail=f"conversation {conversation_id!r}")
    if role not in ROLES:
        raise LegalAssistantError("bad_request", detail=f"unknown message role {role!r}")
    now = timestamp()
    conversation = _conversation_rid(conversation_id)
    data: dict[str, Any] = {
        "conversation": conversation,
        "role": role,
        "content": content,
        "created_at": now,
        "model_id": model_id,
        "provider": provider,
        "engine_port": engine_port,
        "partial": partial,
        "error_code": error_code,
        "timings": dict(timings) if timings is not None else None,
        "usage": dict(usage) if usage is not None else None,
        "sources": sources,
        "citations": citations,
        "stopped": stopped,
        "extract": dict(extract) if extract is not None else None,
        "fallback": fallback,
        "claims": claims,
    }
    try:
        results = await db.query(
            _ADD_MESSAGE,
            {
                "conversation": conversation,
                "message": _message_rid(new_id()),
                "now": now,
                "data": data,
            },
        )
    except DatabaseError as exc:
        if any(_NOT_FOUND_THROW in e for e in exc.statement_errors):
            raise LegalAssistantError(
                "not_found", detail=f"conversation {conversation_id}"
            ) from None
        raise
    return _to_message(rows(results[-1])[0])


async def update_message(
    db: Database,
    message_id: str,
    *,
    content: str | _Unset = UNSET,
    partial: bool | _Unset = UNSET,
    model_id: str | _Unset | None = UNSET,
    provider: str | _Unset | None = UNSET,
    engine_port: int | _Unset | None = UNSET,
    error_code: str | _Unset | None = UNSET,
    timings: Mapping[str, Any] | _Unset | None = UNSET,
    usage: Mapping[str, Any] | _Unset | None = UNSET,
) -> MessagePublic | None:
    """Change the given fields of a message (None clears an optional one).

    Meant for a streamed answer: created `partial=True`, then completed here with its
    final content, timings and usage. `timings`/`usage` are replaced, not merged.
    Returns the updated message, or None if it does not exist (e.g. its conversation
    was deleted while the answer streamed).
    """
    if not is_valid_id(message_id):
        return None
    given: dict[str, Any] = {
        "content": content,
        "partial": partial,
        "model_id": model_id,
        "provider": provider,
        "engine_port": engine_port,
        "error_code": error_code,
        "timings": timings,
        "usage": usage,
    }
    changes = {
        name: (dict(value) if isinstance(value, Mapping) else value)
        for name, value in given.items()
        if not isinstance(value, _Unset)
    }
    rid = _message_rid(message_id)
    if not changes:
        results = await db.query("SELECT * FROM $id", {"id": rid})
    else:
        results = await db.query(_update_statement(changes), {"id": rid, **changes})
    found = rows(results[-1])
    return _to_message(found[0]) if found else None


def _update_statement(changes: Mapping[str, Any]) -> str:
    """`UPDATE $id SET a = $a, ... RETURN AFTER` for a whitelist of field names.

    Only the names are in the text and they come from this module's own keyword
    arguments; the values travel as variables. SET (not MERGE) so an object field is
    replaced instead of deep-merged. `UPDATE` on a missing record returns nothing (it
    does not create it).
    """
    assignments = ", ".join(f"{name} = ${name}" for name in changes)
    return f"UPDATE $id SET {assignments} RETURN AFTER"
