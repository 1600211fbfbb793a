"""Persistence of conversations in SurrealDB (embedded surrealkv by default).

`Database` owns the connection and the schema, `conversations` the queries, `records`
the id format and clock every table shares, and `DataDirLock` makes sure only one
backend ever opens a data directory.
"""

from __future__ import annotations

from legal_assistant.store.conversations import (
    UNSET,
    ConversationDetail,
    ConversationPublic,
    MessagePublic,
    Role,
    add_message,
    conversation_exists,
    create_conversation,
    delete_conversation,
    get_conversation,
    list_conversations,
    update_conversation,
    update_message,
)
from legal_assistant.store.lock import DataDirLock
from legal_assistant.store.records import is_valid_id, new_id
from legal_assistant.store.surreal import Database, DatabaseError

__all__ = [
    "UNSET",
    "ConversationDetail",
    "ConversationPublic",
    "DataDirLock",
    "Database",
    "DatabaseError",
    "MessagePublic",
    "Role",
    "add_message",
    "conversation_exists",
    "create_conversation",
    "delete_conversation",
    "get_conversation",
    "is_valid_id",
    "list_conversations",
    "new_id",
    "update_conversation",
    "update_message",
]
