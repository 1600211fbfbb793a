"""The conversation store against the real embedded SurrealDB engine (surrealkv on disk)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from surrealdb import RecordID

from legal_assistant.errors import LegalAssistantError
from legal_assistant.store import (
    Database,
    DatabaseError,
    add_message,
    conversation_exists,
    create_conversation,
    delete_conversation,
    get_conversation,
    is_valid_id,
    list_conversations,
    new_id,
    update_conversation,
    update_message,
)
from legal_assistant.store.surreal import SCHEMA

NS = "legal_assistant"
DB = "test"

FRENCH = (
    "Bonjour ! Quelle est la durée du préavis de démission d'un salarié cadre ? "
    "« L'article L1237-1 du Code du travail » — réponse en français, s'il vous plaît. "
    "Œuvre, naïveté, façade, ÉTÉ, 📜"
)


def _url(path: Path) -> str:
    return f"surrealkv://{path.resolve()}"


async def _open(path: Path) -> Database:
    db = Database()
    await db.connect(_url(path), NS, DB)
    return db


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = await _open(db_path)
    try:
        yield database
    finally:
        await database.close()


def _parse(ts: str) -> datetime:
    assert ts.endswith("Z"), ts
    parsed = datetime.fromisoformat(ts)
    offset = parsed.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    return parsed


async def test_conversation_round_trip(db: Database) -> None:
    created = await create_conversation(
        db, title="Contrat de bail", language="fr", model_id="mlx-community/SmolLM2"
    )
    assert is_valid_id(created.id)
    assert created.title == "Contrat de bail"
    assert created.language == "fr"
    assert created.model_id == "mlx-community/SmolLM2"
    assert created.message_count == 0
    assert created.created_at == created.updated_at
    _parse(created.created_at)

    detail = await get_conversation(db, created.id)
    assert detail is not None
    assert detail.model_dump(exclude={"messages"}) == created.model_dump()
    assert detail.messages == []
    assert await conversation_exists(db, created.id)

    no_model = await create_conversation(db, title="", language="en", model_id=None)
    fetched = await get_conversation(db, no_model.id)
    assert fetched is not None
    assert fetched.model_id is None
    assert fetched.title == ""


async def test_messages_round_trip_ordering_and_count(db: Database) -> None:
    conv = await create_conversation(db, title="t", language="fr", model_id="m")
    sent = [
        await add_message(db, conversation_id=conv.id, role="system", content="Tu es juriste."),
        await add_message(db, conversation_id=conv.id, role="user", content="Question ?"),
        await add_message(
            db,
            conversation_id=conv.id,
            role="assistant",
            content="Réponse.",
            model_id="m",
            provider="mlx",
            engine_port=8431,
        ),
        await add_message(db, conversation_id=conv.id, role="user", content="Et ensuite ?"),
    ]
    assert all(is_valid_id(m.id) for m in sent)
    assert len({m.id for m in sent}) == 4
    assert all(m.conversation_id == conv.id for m in sent)
    stamps = [_parse(m.created_at) for m in sent]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4

    detail = await get_conversation(db, conv.id)
    assert detail is not None
    assert [m.id for m in detail.messages] == [m.id for m in sent]
    assert detail.messages == sent
    assert detail.message_count == 4
    assert detail.messages[2].provider == "mlx"
    assert detail.messages[2].engine_port == 8431
    assert detail.messages[0].model_id is None
    assert detail.messages[0].partial is False
    assert detail.messages[0].timings is None and detail.messages[0].usage is None
    # add_message bumps updated_at to the last message's time.
    assert detail.updated_at == sent[-1].created_at
    assert _parse(detail.updated_at) > _parse(detail.created_at)


async def test_list_newest_updated_first_with_counts(db: Database) -> None:
    first = await create_conversation(db, title="first", language="fr", model_id=None)
    second = await create_conversation(db, title="second", language="fr", model_id=None)
    third = await create_conversation(db, title="third", language="en", model_id=None)
    listed = await list_conversations(db)
    assert [c.id for c in listed] == [third.id, second.id, first.id]

    await add_message(db, conversation_id=first.id, role="user", content="a")
    await add_message(db, conversation_id=first.id, role="assistant", content="b")
    await add_message(db, conversation_id=second.id, role="user", content="c")
    listed = await list_conversations(db)
    assert [c.id for c in listed] == [second.id, first.id, third.id]
    assert [c.message_count for c in listed] == [1, 2, 0]
    assert [c.title for c in listed] == ["second", "first", "third"]

    assert [c.id for c in await list_conversations(db, limit=2)] == [second.id, first.id]
    assert await list_conversations(db, limit=0) == []


async def test_delete_cascades_to_messages(db: Database) -> None:
    doomed = await create_conversation(db, title="doomed", language="fr", model_id=None)
    kept = await create_conversation(db, title="kept", language="fr", model_id=None)
    for i in range(5):
        await add_message(db, conversation_id=doomed.id, role="user", content=f"d{i}")
    kept_message = await add_message(db, conversation_id=kept.id, role="user", content="k")

    assert await delete_conversation(db, doomed.id) is True
    assert await get_conversation(db, doomed.id) is None
    assert not await conversation_exists(db, doomed.id)
    assert await delete_conversation(db, doomed.id) is False

    remaining = await db.query("SELECT VALUE content FROM message")
    assert remaining[0] == ["k"]
    detail = await get_conversation(db, kept.id)
    assert detail is not None and detail.messages == [kept_message]
    assert [c.id for c in await list_conversations(db)] == [kept.id]

    # A message for a deleted conversation is refused, and leaves no orphan behind.
    with pytest.raises(LegalAssistantError) as info:
        await add_message(db, conversation_id=doomed.id, role="assistant", content="late")
    assert info.value.code == "not_found"
    assert (await db.query("SELECT VALUE content FROM message"))[0] == ["k"]


async def test_persistence_across_close_and_reopen(db_path: Path) -> None:
    db = await _open(db_path)
    conv = await create_conversation(db, title="Persistant", language="fr", model_id="m")
    msg = await add_message(
        db, conversation_id=conv.id, role="user", content=FRENCH, timings={"ttft_ms": 12.5}
    )
    before = await get_conversation(db, conv.id)
    await db.close()
    assert not db.connected

    reopened = await _open(db_path)
    try:
        after = await get_conversation(reopened, conv.id)
        assert after == before
        assert after is not None and after.messages[0].id == msg.id
        assert after.messages[0].content == FRENCH
        # And the store is still writable after reopening (schema re-applied harmlessly).
        await add_message(reopened, conversation_id=conv.id, role="assistant", content="ok")
        listed = await list_conversations(reopened)
        assert [(c.id, c.message_count) for c in listed] == [(conv.id, 2)]
    finally:
        await reopened.close()


async def test_partial_message_then_completed(db: Database) -> None:
    conv = await create_conversation(db, title="stream", language="fr", model_id="m")
    streaming = await add_message(
        db,
        conversation_id=conv.id,
        role="assistant",
        content="",
        model_id="m",
        provider="mlx",
        engine_port=8500,
        partial=True,
        timings={"queue_ms": 3, "nested": {"a": [1, 2.5, "x"]}},
    )
    assert streaming.partial is True
    assert streaming.timings == {"queue_ms": 3, "nested": {"a": [1, 2.5, "x"]}}
    assert streaming.usage is None

    timings = {"ttft_ms": 41.25, "total_ms": 1830.0, "tokens_per_s": 27.3}
    usage = {"prompt_tokens": 120, "completion_tokens": 48, "total_tokens": 168}
    done = await update_message(
        db, streaming.id, content="Réponse complète.", partial=False, timings=timings, usage=usage
    )
    assert done is not None
    assert done.partial is False
    assert done.content == "Réponse complète."
    assert done.timings == timings  # replaced, not deep-merged with the first timings
    assert done.usage == usage
    assert done.created_at == streaming.created_at
    assert (done.model_id, done.provider, done.engine_port) == ("m", "mlx", 8500)

    failed = await update_message(db, streaming.id, partial=True, error_code="engine_crashed")
    assert failed is not None and failed.partial and failed.error_code == "engine_crashed"
    cleared = await update_message(db, streaming.id, error_code=None, usage=None)
    assert cleared is not None and cleared.error_code is None and cleared.usage is None
    assert cleared.timings == timings

    unchanged = await update_message(db, streaming.id)
    assert unchanged == cleared
    detail = await get_conversation(db, conv.id)
    assert detail is not None and detail.messages == [cleared]


async def test_none_inside_objects_is_dropped(db: Database) -> None:
    """SurrealDB quirk, pinned: Python None is NONE, so such keys are not stored."""
    conv = await create_conversation(db, title="t", language="fr", model_id=None)
    msg = await add_message(
        db, conversation_id=conv.id, role="assistant", content="x", usage={"a": 1, "b": None}
    )
    assert msg.usage == {"a": 1}


async def test_unicode_french_text(db: Database) -> None:
    conv = await create_conversation(
        db, title="Préavis de démission — « cadre »", language="fr", model_id=None
    )
    await add_message(db, conversation_id=conv.id, role="user", content=FRENCH)
    detail = await get_conversation(db, conv.id)
    assert detail is not None
    assert detail.title == "Préavis de démission — « cadre »"
    assert detail.messages[0].content == FRENCH
    assert (await list_conversations(db))[0].title == "Préavis de démission — « cadre »"


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "abc",
        "conversation:abc",
        "0" * 31,
        "0" * 33,
        "ABCDEF0123456789ABCDEF0123456789",  # uppercase is not our format
        "00000000-0000-0000-0000-000000000000",
        "x'; DELETE conversation; --",
        "$id",
        "⟨0123⟩",
    ],
)
async def test_bad_ids_are_refused_without_a_query(db: Database, bad_id: str) -> None:
    conv = await create_conversation(db, title="survivor", language="fr", model_id=None)
    await add_message(db, conversation_id=conv.id, role="user", content="still here")

    assert not is_valid_id(bad_id)
    assert await get_conversation(db, bad_id) is None
    assert await conversation_exists(db, bad_id) is False
    assert await delete_conversation(db, bad_id) is False
    assert await update_message(db, bad_id, content="x") is None
    assert await update_conversation(db, bad_id, title="x") is None
    with pytest.raises(LegalAssistantError) as info:
        await add_message(db, conversation_id=bad_id, role="user", content="x")
    assert info.value.code == "not_found"

    detail = await get_conversation(db, conv.id)
    assert detail is not None and detail.message_count == 1


async def test_well_formed_but_unknown_ids(db: Database) -> None:
    unknown = new_id()
    assert await get_conversation(db, unknown) is None
    assert await conversation_exists(db, unknown) is False
    assert await delete_conversation(db, unknown) is False
    assert await update_message(db, unknown, content="x") is None
    assert await update_conversation(db, unknown, title="x") is None
    with pytest.raises(LegalAssistantError) as info:
        await add_message(db, conversation_id=unknown, role="user", content="x")
    assert info.value.code == "not_found"
    # UPDATE on a missing record must not have created one.
    assert (await db.query("SELECT * FROM message"))[0] == []
    assert (await db.query("SELECT * FROM conversation"))[0] == []


async def test_unknown_role_is_refused(db: Database) -> None:
    conv = await create_conversation(db, title="t", language="fr", model_id=None)
    with pytest.raises(LegalAssistantError) as info:
        await add_message(db, conversation_id=conv.id, role="tool", content="x")  # type: ignore[arg-type]
    assert info.value.code == "bad_request"


async def test_update_conversation(db: Database) -> None:
    conv = await create_conversation(db, title="Nouvelle conversation", language="fr", model_id="a")
    renamed = await update_conversation(db, conv.id, title="Bail commercial", model_id=None)
    assert renamed is not None
    assert renamed.title == "Bail commercial" and renamed.model_id is None
    assert renamed.updated_at == conv.updated_at
    assert await update_conversation(db, conv.id) == renamed


async def test_schema_applied_twice_is_fine(db: Database, db_path: Path) -> None:
    conv = await create_conversation(db, title="t", language="fr", model_id=None)
    await add_message(db, conversation_id=conv.id, role="user", content="x")
    await db.apply_schema()
    await db.apply_schema()
    await db.close()

    again = await _open(db_path)  # connect() applies it once more
    try:
        info = (await again.query("INFO FOR TABLE message"))[0]
        assert set(info["indexes"]) == {"message_conversation_created_at"}
        conv_info = (await again.query("INFO FOR TABLE conversation"))[0]
        assert set(conv_info["indexes"]) == {
            "conversation_updated_at",
            "conversation_dossier",
            "conversation_owner",
        }
        detail = await get_conversation(again, conv.id)
        assert detail is not None and detail.message_count == 1
    finally:
        await again.close()


async def test_message_lookup_uses_the_index(db: Database) -> None:
    conv = await create_conversation(db, title="t", language="fr", model_id=None)
    plan = await db.query(
        "SELECT * FROM message WHERE conversation = $c ORDER BY created_at EXPLAIN",
        {"c": RecordID("conversation", conv.id)},
    )
    assert plan[0][0]["operation"] == "Iterate Index"
    assert plan[0][0]["detail"]["plan"]["index"] == "message_conversation_created_at"


async def test_concurrent_add_message_all_persisted(db: Database) -> None:
    conv = await create_conversation(db, title="busy", language="fr", model_id=None)
    other = await create_conversation(db, title="other", language="fr", model_id=None)

    async def write(i: int) -> str:
        target = conv.id if i % 5 else other.id
        message = await add_message(
            db,
            conversation_id=target,
            role="user" if i % 2 else "assistant",
            content=f"message {i}",
            usage={"i": i},
        )
        return message.id

    ids = await asyncio.gather(*(write(i) for i in range(50)))
    assert len(set(ids)) == 50

    busy = await get_conversation(db, conv.id)
    quiet = await get_conversation(db, other.id)
    assert busy is not None and quiet is not None
    assert busy.message_count == len(busy.messages) == 40
    assert quiet.message_count == len(quiet.messages) == 10
    persisted = [*busy.messages, *quiet.messages]
    assert {m.id for m in persisted} == set(ids)
    # Ordered by created_at, which follows the order add_message was called in.
    for detail in (busy, quiet):
        numbers = [int(m.content.split()[1]) for m in detail.messages]
        assert numbers == sorted(numbers)
        assert [m.usage for m in detail.messages] == [{"i": n} for n in numbers]
    assert busy.updated_at == busy.messages[-1].created_at


async def test_query_errors_and_closed_database(db: Database) -> None:
    with pytest.raises(DatabaseError):
        await db.query("SELEKT nonsense")
    with pytest.raises(DatabaseError) as info:
        # Schema enforcement: SCHEMAFULL + ASSERT refuse bad rows written by hand.
        await db.query("CREATE message CONTENT {role: 'robot'}")
    assert info.value.statement_errors
    await db.close()
    with pytest.raises(DatabaseError):
        await db.query("RETURN 1")
    await db.close()  # closing twice is harmless


async def test_connect_twice_and_mem_url() -> None:
    db = Database()
    await db.connect("mem://", NS, DB)
    try:
        with pytest.raises(RuntimeError):
            await db.connect("mem://", NS, DB)
        conv = await create_conversation(db, title="mem", language="en", model_id=None)
        assert await conversation_exists(db, conv.id)
    finally:
        await db.close()


def test_schema_is_idempotent_by_construction() -> None:
    assert all(" IF NOT EXISTS " in statement for statement in SCHEMA)


async def test_write_conflicts_are_retried(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote server shared with other clients can still report optimistic conflicts."""
    client = db._client
    assert client is not None
    real = client.query_raw
    conflicts = {"left": 2}
    conflict = (
        "The query was not executed due to a failed transaction. Failed to commit "
        "transaction due to a read or write conflict. This transaction can be retried"
    )

    async def flaky(sql: str, params: dict[str, object] | None = None) -> dict[str, object]:
        if conflicts["left"]:
            conflicts["left"] -= 1
            return {"result": [{"status": "ERR", "result": conflict, "time": "0ns"}]}
        return await real(sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(client, "query_raw", flaky)
    conv = await create_conversation(db, title="retried", language="fr", model_id=None)
    assert conflicts["left"] == 0
    assert await conversation_exists(db, conv.id)
