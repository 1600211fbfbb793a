"""Property tests (hypothesis): the model-id parser, the only gate between a request and a
command line, and the SSE encoding of chat events, the only channel model output takes to
the browser and the CLI.

Bounded: a fixed number of examples per property, no example database (nothing written in
the repository), no per-example deadline (the machine is shared)."""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sec_helpers import parse_sse

from legal_assistant.api.sse import sse
from legal_assistant.catalog import (
    MANAGED_PROVIDERS,
    MAX_MODEL_ID_LEN,
    PROVIDERS,
    ModelRef,
    parse_model_id,
)
from legal_assistant.chat.turn import ChatEvent
from legal_assistant.errors import LegalAssistantError
from legal_assistant.sse_client import iter_sse

FUZZ = settings(
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SSE_FUZZ = settings(max_examples=150, deadline=None, database=None)

_ALIAS = re.compile(r"[a-z0-9][a-z0-9._-]*")
_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PATH_PART = re.compile(r"[A-Za-z0-9._@+-][A-Za-z0-9 ._@+-]*")

# Pieces an attacker would combine: separators, traversal, option dashes, whitespace,
# control and look-alike characters, shell metacharacters.
PIECES = [
    "a", "Z", "0", "9", "org", "repo", "model", ".gguf", "smollm2-135m",
    "/", "//", ".", "..", "-", "--", "--port", "=", "_", "@", "+", ":", " ", "\t", "\n",
    "\r", "\x00", "\x1b", "\x7f", "\u2028", "\u00a0", "\u2215", "\u2044", "\uff0f",
    "\u29f8", "\u0430", "\u0131", "~", "$", "`", ";", "|", "&", "'", '"', "\\", "%2e",
    "%2f", "*", "?", "#",
]  # fmt: skip
providers = st.one_of(
    st.sampled_from([*PROVIDERS, "MLX", "mlx ", "hf", "file", "http", ""]),
    st.text(max_size=8),
)
names = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
crafted_ids = st.builds(
    lambda p, sep, n: f"{p}{sep}{n}", providers, st.sampled_from([":", ""]), names
)
long_ids = st.builds(
    lambda p, n, tail: f"{p}:{'a' * n}{tail}",
    st.sampled_from(PROVIDERS),
    st.integers(MAX_MODEL_ID_LEN - 20, MAX_MODEL_ID_LEN + 20),
    st.sampled_from(["", "/b", "\x00"]),
)
any_ids = st.one_of(st.text(max_size=64), crafted_ids, long_ids)


def check_accepted(model_id: str, ref: ModelRef) -> None:
    # Nothing is rewritten behind the caller's back, beyond dropping a path's trailing "/".
    assert ref.id == model_id or (ref.kind == "path" and ref.id == model_id.rstrip("/"))
    assert parse_model_id(ref.id) == ref  # round-trip: the canonical id is a fixed point
    assert ref.provider in PROVIDERS
    name = ref.name
    assert len(model_id) <= MAX_MODEL_ID_LEN
    assert name.isascii(), name
    assert all(c.isprintable() for c in name), name
    assert not name.startswith("-"), name  # never an option on a command line
    assert ".." not in name.split("/"), name
    whitespace = {c for c in name if c.isspace()}
    if ref.managed and ref.kind == "path":
        # A path segment may hold a plain space (one argv element, no shell involved).
        assert whitespace <= {" "}, name
    else:
        assert not whitespace, name
    if ref.provider in MANAGED_PROVIDERS:
        if ref.kind == "alias":
            assert _ALIAS.fullmatch(name), name
            assert ref.provider != "vllm"
        elif ref.kind == "repo":
            org, _, repo = name.partition("/")
            assert _REPO_PART.fullmatch(org) and _REPO_PART.fullmatch(repo), name
            assert ref.provider != "llamacpp"
        else:
            assert ref.kind == "path" and name.startswith("/")
            trimmed = name.rstrip("/")
            assert trimmed and posixpath.normpath(trimmed) == trimmed, name  # absolute, normalized
            assert all(_PATH_PART.fullmatch(part) for part in trimmed.split("/")[1:]), name
            if ref.provider == "llamacpp":
                assert name.endswith(".gguf")
    else:
        assert ref.kind == "name"


@FUZZ
@given(model_id=any_ids)
@example(model_id="mlx:--port 1")
@example(model_id="mlx:/etc/../x")
@example(model_id="mlx:../../etc")
@example(model_id="mlx:a b")
@example(model_id="mlx:/a b/c")
@example(model_id="mlx:/a/b/")
@example(model_id="mlx:org\u2215repo")
@example(model_id="ollama:qwen2.5:7b")
@example(model_id="openai:gpt-4o@2024:latest")
@example(model_id="llamacpp:/m/x.gguf")
@example(model_id="mlx:" + "a" * 10_000)
def test_parse_model_id_accepts_only_safe_forms(model_id: str) -> None:
    try:
        ref = parse_model_id(model_id)
    except LegalAssistantError as err:
        assert err.code in ("invalid_model_id", "unknown_provider"), err.code
        assert err.http_status == 400
        assert err.message_en and err.message_fr
        # What is echoed back is bounded and printable.
        assert len(err.detail) < 400 and all(c.isprintable() for c in err.detail), err.detail
        return
    check_accepted(model_id, ref)


@FUZZ
@given(value=st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text(max_size=3))))
def test_parse_model_id_refuses_non_strings(value: Any) -> None:
    try:
        parse_model_id(value)
    except LegalAssistantError as err:
        assert err.code == "invalid_model_id"
    else:
        raise AssertionError(f"accepted {value!r}")


valid_names = st.one_of(
    st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z"),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,10}/[A-Za-z0-9][A-Za-z0-9._-]{0,10}\Z"),
    st.lists(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9 ._-]{0,8}\Z"), min_size=1, max_size=4).map(
        lambda parts: "/" + "/".join(parts)
    ),
)


@FUZZ
@given(provider=st.sampled_from(sorted(MANAGED_PROVIDERS)), name=valid_names)
def test_well_formed_ids_round_trip(provider: str, name: str) -> None:
    """Whatever is accepted among well-formed candidates satisfies the same invariants."""
    model_id = f"{provider}:{name}"
    try:
        ref = parse_model_id(model_id)
    except LegalAssistantError as err:
        assert err.code == "invalid_model_id"
        return
    check_accepted(model_id, ref)


# ---------------------------------------------------------------------------- SSE
TRICKY_TEXT = [
    "\n", "\r", "\r\n", "\n\n", "\r\r", "data: ", "event: done", "event:error\n\ndata: {}",
    ":", ": ping", "id: 1", "retry: 0", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c",
    "\x00", "\ufeff", "é", "€", "🙂", "👩‍⚖️", "\U0010ffff", '"', "\\", "}", "{", " ",
]  # fmt: skip
tricky_text = st.lists(
    st.one_of(st.sampled_from(TRICKY_TEXT), st.text(max_size=4)), max_size=8
).map("".join)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        tricky_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(tricky_text, inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.lists(
    st.tuples(
        st.sampled_from(["meta", "status", "token", "done", "error"]),
        st.dictionaries(tricky_text, json_values, max_size=5),
    ),
    min_size=1,
    max_size=6,
)


async def _asgi_body(chat_events: list[ChatEvent]) -> bytes:
    """Run the app's SSE response (legal_assistant.api.sse.sse) as a tiny ASGI call."""

    async def gen() -> AsyncIterator[ChatEvent]:
        for ev in chat_events:
            yield ev

    response = sse(gen())
    body: list[bytes] = []
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    await asyncio.wait_for(response(scope, receive, send), 10)
    return b"".join(body)


def _chunked(data: bytes, cuts: list[int]) -> httpx.Response:
    """A streamed response whose body arrives cut at the given offsets (e.g. between the
    \\r and \\n of a line end, or inside a multi-byte character)."""
    points = sorted({c % (len(data) + 1) for c in cuts})

    async def stream() -> AsyncIterator[bytes]:
        start = 0
        for point in [*points, len(data)]:
            yield data[start:point]
            start = point

    return httpx.Response(200, content=stream(), headers={"content-type": "text/event-stream"})


async def _cli_events(data: bytes, cuts: list[int]) -> list[tuple[str, dict[str, Any]]]:
    return [item async for item in iter_sse(_chunked(data, cuts))]


@SSE_FUZZ
@given(items=events, cuts=st.lists(st.integers(0, 10_000), max_size=6))
@example(items=[("token", {"content": "a\r\n\r\nevent: done\r\ndata: {}\r\n\r\n"})], cuts=[])
@example(items=[("token", {"content": "a\u2028b\x85c\x0cd"})], cuts=[])
@example(items=[("token", {"content": "\r"}), ("done", {})], cuts=[13, 14, 15])
def test_sse_events_round_trip(items: list[tuple[str, dict[str, Any]]], cuts: list[int]) -> None:
    chat_events = [ChatEvent(name, data) for name, data in items]  # type: ignore[arg-type]
    raw = asyncio.run(_asgi_body(chat_events))
    text = raw.decode("utf-8")
    expected = [(ev.event, ev.data) for ev in chat_events]

    # A standard (WHATWG) parser sees exactly these events: no event injected by content.
    parsed = [(name, json.loads(data)) for name, data in parse_sse(text)]
    assert parsed == expected
    # Every line of the stream is a known field or a comment (ping).
    for line in re.split(r"\r\n|\r|\n", text):
        assert line == "" or line.startswith(("event: ", "data: ", ": ")), repr(line)

    # The CLI's reader, however the bytes are cut on the wire.
    assert asyncio.run(_cli_events(raw, cuts)) == expected
