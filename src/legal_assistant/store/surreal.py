"""A small, safe wrapper around the SurrealDB Python driver.

Why a wrapper rather than the driver everywhere:

* One place applies the schema, idempotently, at every startup, so a fresh data
  directory and an old one end up with the same tables, fields and indexes.
* One place turns the driver's three ways of failing (a Python exception from the
  embedded engine, an RPC `error`, a statement with `status: "ERR"` that `query_raw`
  returns silently) into one `DatabaseError`.
* Every statement runs under an `asyncio.Lock`. The driver itself tolerates concurrent
  calls, but SurrealDB transactions are optimistic: two tasks appending to the same
  conversation at once make one of them fail with "read or write conflict". Serialising
  our own statements removes those conflicts (a statement takes well under a millisecond
  on the embedded engine); against a shared remote server the remaining conflicts are
  retried a few times.

Quirks of the pinned stack (surrealdb 2.0.0 driver, surrealdb-core 2.3.10 engine):

* `AsyncSurreal(...).query()` returns only the FIRST statement's result; we use
  `query_raw` and check every statement.
* Python `None` is sent as SurrealQL `NONE`, so a field set to None disappears, and a
  None value inside an object field (timings, usage) is dropped, not stored as null.
* `UPDATE ... MERGE` deep-merges objects; use `SET field = $value` to replace one.
* The embedded engine takes no lock on its directory: see `store.lock.DataDirLock`.
* `ORDER BY updated_at` does not use the `updated_at` index in this engine version (it
  sorts in memory); the index is still defined so newer engines can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from surrealdb import (
    AsyncEmbeddedSurrealConnection,
    AsyncHttpSurrealConnection,
    AsyncSurreal,
    AsyncWsSurrealConnection,
)

from legal_assistant.accounts.schema import ACCOUNTS_SCHEMA
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store.schema import DOSSIER_SCHEMA, JUDGMENT_SCHEMA

_Client = AsyncEmbeddedSurrealConnection | AsyncWsSurrealConnection | AsyncHttpSurrealConnection

_NETWORK_SCHEMES = frozenset({"ws", "wss", "http", "https"})
_CONFLICT_RETRIES = 5
_CONFLICT_MARKER = "can be retried"
_NOT_EXECUTED = "The query was not executed due to a failed transaction"

# The whole schema. `IF NOT EXISTS` everywhere makes it safe to run at every startup
# (re-running it never rebuilds an index or touches data). SCHEMAFULL so a typo in a
# field name is an error instead of a silently stored extra column.
SCHEMA: tuple[str, ...] = (
    "DEFINE TABLE IF NOT EXISTS conversation SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS title ON conversation TYPE string",
    "DEFINE FIELD IF NOT EXISTS language ON conversation TYPE string",
    "DEFINE FIELD IF NOT EXISTS model_id ON conversation TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS created_at ON conversation TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS updated_at ON conversation TYPE datetime",
    # Denormalised, maintained in the same transaction as every message insert/delete,
    # so listing conversations does not count the messages of each one (measured: ~0.6 ms
    # per conversation with an index-backed count, i.e. 60 ms for a page of 100).
    "DEFINE FIELD IF NOT EXISTS message_count ON conversation TYPE int DEFAULT 0",
    "DEFINE INDEX IF NOT EXISTS conversation_updated_at ON conversation FIELDS updated_at",
    "DEFINE TABLE IF NOT EXISTS message SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS conversation ON message TYPE record<conversation>",
    "DEFINE FIELD IF NOT EXISTS role ON message TYPE string"
    " ASSERT $value IN ['user', 'assistant', 'system']",
    "DEFINE FIELD IF NOT EXISTS content ON message TYPE string",
    "DEFINE FIELD IF NOT EXISTS created_at ON message TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS model_id ON message TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS provider ON message TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS engine_port ON message TYPE option<int>",
    "DEFINE FIELD IF NOT EXISTS partial ON message TYPE bool DEFAULT false",
    "DEFINE FIELD IF NOT EXISTS error_code ON message TYPE option<string>",
    # FLEXIBLE: timings/usage are free-form objects whose keys differ per provider.
    "DEFINE FIELD IF NOT EXISTS timings ON message TYPE option<object> FLEXIBLE",
    "DEFINE FIELD IF NOT EXISTS usage ON message TYPE option<object> FLEXIBLE",
    "DEFINE INDEX IF NOT EXISTS message_conversation_created_at"
    " ON message FIELDS conversation, created_at",
    # Dossiers (store/dossiers.py, store/documents.py): a conversation may belong to one;
    # a grounded answer keeps the passages it was given and the citations verified in it.
    "DEFINE FIELD IF NOT EXISTS dossier_id ON conversation TYPE option<string>",
    "DEFINE INDEX IF NOT EXISTS conversation_dossier ON conversation FIELDS dossier_id",
    "DEFINE FIELD IF NOT EXISTS sources ON message TYPE option<array<object>> FLEXIBLE",
    "DEFINE FIELD IF NOT EXISTS citations ON message TYPE option<array<int>>",
    # Its checked statements (legal_assistant.claims): [{text, char_start, ..., verdict}].
    "DEFINE FIELD IF NOT EXISTS claims ON message TYPE option<array<object>> FLEXIBLE",
    *DOSSIER_SCHEMA,
    *ACCOUNTS_SCHEMA,
    *JUDGMENT_SCHEMA,
    # How an answer ended, and a grounded turn's extractive answer (docs/answers.md).
    "DEFINE FIELD IF NOT EXISTS stopped ON message TYPE option<string>",
    "DEFINE FIELD IF NOT EXISTS extract ON message TYPE option<object> FLEXIBLE",
    "DEFINE FIELD IF NOT EXISTS fallback ON message TYPE option<string>",
)


class DatabaseError(RuntimeError):
    """SurrealDB refused or failed a statement (a bug or a broken database, not user input).

    `statement_errors` holds the engine's message for each failed statement, so a THROW
    raised on purpose inside a transaction can be recognised by the caller.
    """

    def __init__(self, message: str, statement_errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.statement_errors = list(statement_errors)

    def user_error(self) -> LegalAssistantError:
        """What a client is told (disk full, unwritable directory...): a classified error
        instead of a dropped connection."""
        return LegalAssistantError("storage_error", str(self)[:500])


class Database:
    """An open SurrealDB connection, safe to share between asyncio tasks.

    Create one per process, `await connect(...)` at startup, `await close()` at
    shutdown. For the embedded engine, hold a `DataDirLock` on the data directory first.
    """

    def __init__(self) -> None:
        self._client: _Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        self.url: str | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(
        self,
        url: str,
        namespace: str,
        database: str,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        """Open `url` (`surrealkv:///abs/path`, `mem://`, `ws://host:port`, ...), select
        `namespace`/`database` and apply the schema.

        Credentials are used only for network URLs: the embedded engine has no users and
        its `signin` fails.
        """
        if self._client is not None:
            raise RuntimeError("Database is already connected")
        scheme = urlparse(url).scheme.lower()
        stack = contextlib.AsyncExitStack()
        try:
            client = AsyncSurreal(url)
            # Every driver connection type is an async context manager that opens and
            # closes it (the HTTP one has no `connect`), so use that uniformly.
            await stack.enter_async_context(client)
            if scheme in _NETWORK_SCHEMES and user is not None:
                await client.signin({"username": user, "password": password or ""})
            await client.use(namespace, database)
        except Exception as exc:
            await stack.aclose()
            raise DatabaseError(f"cannot open SurrealDB at {url}: {exc}") from exc
        self._client = client
        self._stack = stack
        self.url = url
        try:
            await self.apply_schema()
        except BaseException:
            await self.close()
            raise

    async def apply_schema(self) -> None:
        """Define tables, fields and indexes; harmless to run again."""
        await self.query(";\n".join(SCHEMA) + ";")

    async def query(self, sql: str, variables: Mapping[str, Any] | None = None) -> list[Any]:
        """Run one or more SurrealQL statements and return each statement's result.

        Values must come in `variables` (bound as `$name`), never be formatted into `sql`:
        that is what keeps user input from becoming SurrealQL.
        """
        params: dict[str, Any] = dict(variables or {})
        for attempt in range(_CONFLICT_RETRIES + 1):
            async with self._lock:
                client = self._client
                if client is None:
                    raise DatabaseError("Database is not connected")
                try:
                    # query_raw fills the dict it is given; hand it a copy each attempt.
                    response = await client.query_raw(sql, dict(params))
                except Exception as exc:
                    raise DatabaseError(f"SurrealDB query failed: {exc}") from exc
            try:
                return _statement_results(response)
            except DatabaseError as exc:
                retryable = any(_CONFLICT_MARKER in e for e in exc.statement_errors)
                if not retryable or attempt == _CONFLICT_RETRIES:
                    raise
            await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close the connection after any statement in flight has finished."""
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                await stack.aclose()


def _statement_results(response: Any) -> list[Any]:
    """Unpack a `query_raw` response, raising on an RPC or any statement error."""
    if not isinstance(response, dict):
        raise DatabaseError(f"unexpected SurrealDB response: {response!r}")
    error = response.get("error")
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise DatabaseError(f"SurrealDB error: {message}", [str(message)])
    statements = response.get("result")
    if not isinstance(statements, list):
        raise DatabaseError(f"unexpected SurrealDB response: {response!r}")
    failures = [
        str(s.get("result", ""))
        for s in statements
        if isinstance(s, dict) and s.get("status") != "OK"
    ]
    if failures:
        # Inside a failed transaction every other statement reports "not executed due
        # to a failed transaction"; name the statement that actually failed.
        cause = next((f for f in failures if not f.startswith(_NOT_EXECUTED)), failures[0])
        raise DatabaseError(f"SurrealDB statement failed: {cause}", failures)
    return [s.get("result") if isinstance(s, dict) else None for s in statements]
