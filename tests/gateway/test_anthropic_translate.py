"""The pure Anthropic ⇄ OpenAI translation (`legal_assistant.gateway.anthropic`): request
validation and refusals, the stop-sequence scanner (property-tested over every way a
stream can be cut into chunks), and the event sequence of a message."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legal_assistant.errors import LegalAssistantError
from legal_assistant.gateway.anthropic import parse_request
from legal_assistant.gateway.anthropic_reply import MessageBuilder, StopScanner

USER = [{"role": "user", "content": "Bonjour"}]


def test_request_translates_system_blocks_and_sampling() -> None:
    req = parse_request(
        {
            "model": "mlx:smollm2-135m",
            "max_tokens": 50,
            "system": [{"type": "text", "text": "Tu es "}, {"type": "text", "text": "juriste."}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Q1", "cache_control": {}}]},
                {"role": "assistant", "content": "R1"},
                {"role": "user", "content": "Q2"},
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 10,
            "stop_sequences": ["\n\n"],
            "stream": True,
            "metadata": {"user_id": "u"},
        }
    )
    assert req.stream and req.stop_sequences == ("\n\n",) and req.model == "mlx:smollm2-135m"
    assert req.openai == {
        "messages": [
            {"role": "system", "content": "Tu es juriste."},
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "R1"},
            {"role": "user", "content": "Q2"},
        ],
        "max_tokens": 50,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 10,
    }
    # count_tokens bodies need no max_tokens.
    assert (
        "max_tokens" not in parse_request({"model": "m", "messages": USER}, count_only=True).openai
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}, "image"),
        ({"messages": [{"role": "user", "content": [{"type": "document"}]}]}, "document"),
        ({"tools": [{"name": "t"}]}, "tools.0.input_schema"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tools"),
        ({"tool_choice": {"type": "any"}}, "requires tools"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "tool use id",
        ),
        (
            {"messages": [*USER, {"role": "assistant", "content": [{"type": "thinking"}]}]},
            "thinking",
        ),
        ({"messages": [{"role": "system", "content": "x"}]}, "user message"),
        ({"output_config": {"format": {"type": "json_schema"}}}, "structured"),
        ({"messages": [*USER, {"role": "assistant", "content": "Sure"}]}, "prefill"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"stop_sequences": [""]}, "stop_sequences"),
        ({"model": ""}, "model"),
    ],
)
def test_unsupported_or_invalid_requests_are_refused_by_name(
    change: dict[str, Any], needle: str
) -> None:
    body = {"model": "mlx:smollm2-135m", "max_tokens": 10, "messages": USER, **change}
    with pytest.raises(LegalAssistantError) as caught:
        parse_request(body)
    assert caught.value.code == "bad_request"
    assert needle in caught.value.detail


@pytest.mark.parametrize("kind", ["disabled", "enabled", "adaptive"])
def test_thinking_requests_are_accepted_and_ignored(kind: str) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": USER, "thinking": {"type": kind}}
    assert parse_request(body).openai == {"messages": USER, "max_tokens": 5}


def test_system_messages_join_the_system_prompt() -> None:
    """What Claude Code sends: system blocks, then its environment as a system message
    after the first user message."""
    req = parse_request(
        {
            "model": "m",
            "max_tokens": 5,
            "system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}],
            "messages": [*USER, {"role": "system", "content": [{"type": "text", "text": "B"}]}],
            "context_management": {"edits": []},
            "output_config": {"effort": "high"},
        }
    )
    assert req.openai["messages"] == [{"role": "system", "content": "A\n\nB"}, *USER]


@given(
    text=st.text(alphabet="ab \n", max_size=40),
    stops=st.lists(st.text(alphabet="ab \n", min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_stop_scanner_equals_cutting_the_whole_text(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    """However the stream is chunked, what is shown is the text up to the stop sequence
    that completes first (or all of it), as a character-by-character reader would cut."""
    scanner = StopScanner(tuple(stops))
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    shown = ""
    for a, b in itertools.pairwise(bounds):
        shown += scanner.push(text[a:b])
        if scanner.matched is not None:
            break
    if scanner.matched is None:
        shown += scanner.flush()
    hits = [(i + len(s), i, s) for s in stops if (i := text.find(s)) >= 0]
    if hits:
        _, at, first = min(hits, key=lambda h: (h[0], h[1]))
        assert shown == text[:at]
        assert scanner.matched == first
    else:
        assert shown == text and scanner.matched is None


def _events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().strip().split("\n\n"):
        name_line, data_line = block.split("\n")
        out.append(
            (name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: ")))
        )
    return out


def _chunk(text: str | None = None, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        chunk = {"choices": [], "usage": usage}
    return chunk


def test_message_builder_event_sequence_and_usage() -> None:
    b = MessageBuilder("mlx:smollm2-135m")
    raw = (
        b.start() + b.feed(_chunk("Bon")) + b.feed(_chunk("jour")) + b.feed(_chunk(None, "length"))
    )
    raw += b.feed(_chunk(usage={"prompt_tokens": 7, "completion_tokens": 2}))
    raw += b.finish()
    events = _events(raw)
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(d["type"] == n for n, d in events)
    assert events[5][1]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert events[5][1]["usage"] == {"input_tokens": 7, "output_tokens": 2}
    assert b.message()["content"] == [{"type": "text", "text": "Bonjour"}]


def test_message_builder_stops_at_a_stop_sequence() -> None:
    b = MessageBuilder("m", ("##",))
    b.start()
    out = b.feed(_chunk("Un #")) + b.feed(_chunk("# deux"))
    assert b.stopped
    assert "".join(d["delta"]["text"] for _, d in _events(out)) == "Un "
    msg = b.message()
    assert msg["stop_reason"] == "stop_sequence" and msg["stop_sequence"] == "##"
    assert msg["usage"]["output_tokens"] == 2  # chunks seen: the engine's count never came


def test_tool_use_history_becomes_openai_tool_calls_and_tool_messages() -> None:
    tools = [{"name": "lire", "input_schema": {"type": "object"}}]
    req = parse_request(
        {
            "model": "m",
            "max_tokens": 9,
            "tools": tools,
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Je lis."},
                        {"type": "tool_use", "id": "toolu_1", "name": "lire", "input": {"p": "é"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                        {"type": "text", "text": "Et alors ?"},
                    ],
                },
            ],
        }
    )
    assert req.uses_tools
    assert req.openai["parallel_tool_calls"] is False
    assert req.openai["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Je lis.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "lire", "arguments": '{"p": "é"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
        {"role": "user", "content": "Et alors ?"},
    ]  # fmt: skip


def _call(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> Any:
    function: dict[str, Any] = {"arguments": args}
    if name is not None:
        function["name"] = name
    call: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        call["id"] = id
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}


def test_message_builder_text_then_tool_calls_as_blocks() -> None:
    b = MessageBuilder("m", tools=True)
    raw = b.start() + b.feed(_chunk("Je cherche."))
    raw += b.feed(_call(0, id="call_a", name="lire")) + b.feed(_call(0, args='{"p"'))
    raw += b.feed(_call(0, args=': "x"}')) + b.feed(_call(1, id="bad id!", name="b", args="{}"))
    raw += b.feed(_chunk(None, "tool_calls")) + b.finish()
    events = _events(raw)
    assert [(n, d.get("index")) for n, d in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[4][1]["content_block"] == {
        "type": "tool_use", "id": "call_a", "name": "lire", "input": {}
    }  # fmt: skip
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    content = b.message()["content"]
    assert content[0] == {"type": "text", "text": "Je cherche."}
    assert content[1] == {"type": "tool_use", "id": "call_a", "name": "lire", "input": {"p": "x"}}
    assert content[2]["id"].startswith("toolu_") and content[2]["input"] == {}


def test_message_builder_reports_arguments_that_are_not_an_object() -> None:
    b = MessageBuilder("m", tools=True)
    b.start()
    b.feed(_call(0, id="c", name="lire", args="[1, 2]"))
    assert b.bad_tool_call() is not None
    assert _events(b.finish())[-1][0] == "error"


def test_deferred_tools_are_hidden_until_a_tool_reference_loads_them() -> None:
    schema = {"type": "object"}
    tools = [
        {"name": "Read", "input_schema": schema},
        {"name": "Cron", "input_schema": schema, "defer_loading": True},
    ]
    first = parse_request({"model": "m", "max_tokens": 5, "messages": USER, "tools": tools})
    assert [t["function"]["name"] for t in first.openai["tools"]] == ["Read"]
    search = {"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {"q": "cron"}}
    loaded = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [{"type": "tool_reference", "tool_name": "Cron"}],
    }
    messages = [
        *USER,
        {"role": "assistant", "content": [search]},
        {"role": "user", "content": [loaded]},
    ]
    later = parse_request({"model": "m", "max_tokens": 5, "messages": messages, "tools": tools})
    assert [t["function"]["name"] for t in later.openai["tools"]] == ["Read", "Cron"]
    assert later.openai["messages"][-1] == {
        "role": "tool", "tool_call_id": "t1", "content": "Tool loaded: Cron\n"
    }  # fmt: skip
