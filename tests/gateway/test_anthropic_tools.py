"""Tool use through `/v1/messages` with the official `anthropic` client, streamed and not,
against the scripted engine (tests/fakes/scripted_engine.py: a stand-in for
`llama-server --jinja` answering with tool calls, then with text built from the tool
results), configured as an `openai:` endpoint (OPENAI_ENDPOINTS).

Checked end to end: the translation both ways (what the engine received is inspected),
two tool calls in one turn, a `tool_result` with `is_error`, non-ASCII tool names and
arguments, ids stable across the turn, the exact stream event sequence, `tool_choice`,
and `count_tokens` counting the tools."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

MODEL = "openai:scripted"
TOOLS: list[dict[str, Any]] = [
    {
        "name": "lire_fichier",
        "description": "Lit un fichier du dossier",
        "input_schema": {"type": "object", "properties": {"chemin": {"type": "string"}}},
    },
    {
        "name": "chercher_décision",
        "description": "Cherche une décision de justice",
        "input_schema": {"type": "object", "properties": {"requête": {"type": "string"}}},
    },
]
TWO_CALLS = (
    'Lis le bail et cherche la jurisprudence.\ncall: lire_fichier {"chemin": "bail é.txt"}\n'
    'call: chercher_décision {"requête": "congé délivré hors délai — Cass. 3e civ."}'
)


@pytest.fixture
def gw(scripted_gateway: tuple[Any, Any]) -> Any:
    running, engine = scripted_gateway
    running.engine = engine
    return running


def client(gw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="unused",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False, timeout=60),
    )


def results_for(content: list[Any]) -> list[dict[str, Any]]:
    """The client's answer to two tool calls: a file's text, and an error."""
    uses = [b for b in content if b.type == "tool_use"]
    return [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": "Loyer : 800 €"},
        {
            "type": "tool_result",
            "tool_use_id": uses[1].id,
            "content": [{"type": "text", "text": "base indisponible"}],
            "is_error": True,
        },
    ]


async def test_two_tool_calls_round_trip_not_streamed(gw: Any) -> None:
    c = client(gw)
    first = await c.messages.create(
        model=MODEL, max_tokens=200, tools=TOOLS, messages=[{"role": "user", "content": TWO_CALLS}]
    )
    assert first.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "name", None)) for b in first.content] == [
        ("tool_use", "lire_fichier"),
        ("tool_use", "chercher_décision"),
    ]
    uses: list[Any] = list(first.content)
    assert uses[0].input == {"chemin": "bail é.txt"}
    assert uses[1].input == {"requête": "congé délivré hors délai — Cass. 3e civ."}
    assert first.usage.output_tokens > 0 and first.usage.input_tokens > 0

    # What the engine got: OpenAI function tools, the schema as `parameters`.
    sent = gw.engine.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["lire_fichier", "chercher_décision"]
    assert sent["tools"][1]["function"]["parameters"] == TOOLS[1]["input_schema"]
    assert sent["tool_choice"] == "auto"

    second = await c.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": TWO_CALLS},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": results_for(first.content)},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]
    # Built by the engine from the results, each named through its call id.
    assert second.content[0].text == (  # type: ignore[union-attr]
        "Résultats : lire_fichier → Loyer : 800 € | chercher_décision → Error: base indisponible"
    )
    sent = gw.engine.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "tool"]
    calls = sent["messages"][1]["tool_calls"]
    assert [c["id"] for c in calls] == [uses[0].id, uses[1].id]
    assert json.loads(calls[1]["function"]["arguments"]) == uses[1].input
    assert [m["tool_call_id"] for m in sent["messages"][2:]] == [uses[0].id, uses[1].id]


async def test_two_tool_calls_round_trip_streamed_with_the_exact_events(gw: Any) -> None:
    c = client(gw)
    events: list[Any] = []
    async with c.messages.stream(
        model=MODEL, max_tokens=200, tools=TOOLS, messages=[{"role": "user", "content": TWO_CALLS}]
    ) as stream:
        async for event in stream:
            if event.type in (
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ):
                events.append(event)
        final = await stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"], kinds
    assert kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e.type == "content_block_start"]
    assert [(s.index, s.content_block.type, s.content_block.input) for s in starts] == [
        (0, "tool_use", {}),
        (1, "tool_use", {}),
    ]
    assert [s.content_block.name for s in starts] == ["lire_fichier", "chercher_décision"]
    for block in (0, 1):  # start, deltas, stop — one block after the other
        mine = [e for e in events if getattr(e, "index", None) == block]
        assert mine[0].type == "content_block_start" and mine[-1].type == "content_block_stop"
        deltas = mine[1:-1]
        assert len(deltas) > 1 and all(d.delta.type == "input_json_delta" for d in deltas)
        joined = "".join(d.delta.partial_json for d in deltas)
        assert json.loads(joined) == final.content[block].input  # type: ignore[union-attr]
    assert events[-2].delta.stop_reason == "tool_use"
    assert events[-2].usage.output_tokens > 0
    # The ids the stream opened the blocks with are the final message's.
    assert [s.content_block.id for s in starts] == [b.id for b in final.content]  # type: ignore[union-attr]
    assert final.content[1].input == {"requête": "congé délivré hors délai — Cass. 3e civ."}  # type: ignore[union-attr]

    async with c.messages.stream(
        model=MODEL,
        max_tokens=200,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": TWO_CALLS},
            {"role": "assistant", "content": [b.model_dump() for b in final.content]},
            {"role": "user", "content": results_for(final.content)},
        ],
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        answer = await stream.get_final_message()
    assert text.startswith("Résultats : lire_fichier → Loyer : 800 €")
    assert "chercher_décision → Error: base indisponible" in text
    assert answer.stop_reason == "end_turn" and len(answer.content) == 1


async def test_tool_choice_and_count_tokens(gw: Any) -> None:
    c = client(gw)
    ask = [{"role": "user", "content": "Que dit le bail ?"}]
    forced = await c.messages.create(
        model=MODEL,
        max_tokens=50,
        tools=TOOLS,
        tool_choice={
            "type": "tool",
            "name": "chercher_décision",
            "disable_parallel_tool_use": True,
        },
        messages=ask,
    )
    sent = gw.engine.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["chercher_décision"]
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert forced.stop_reason == "tool_use" and forced.content[0].name == "chercher_décision"  # type: ignore[union-attr]

    await c.messages.create(
        model=MODEL, max_tokens=50, tools=TOOLS, tool_choice={"type": "any"}, messages=ask
    )
    assert gw.engine.requests[-1]["tool_choice"] == "required"

    plain = await c.messages.create(
        model=MODEL, max_tokens=50, tools=TOOLS, tool_choice={"type": "none"}, messages=ask
    )
    assert "tools" not in gw.engine.requests[-1] and "tool_choice" not in gw.engine.requests[-1]
    assert (
        plain.stop_reason == "end_turn" and plain.content[0].text == "Réponse : Que dit le bail ?"
    )  # type: ignore[union-attr]

    without = await c.messages.count_tokens(model=MODEL, messages=ask)
    with_tools = await c.messages.count_tokens(model=MODEL, messages=ask, tools=TOOLS)  # type: ignore[arg-type]
    assert with_tools.input_tokens > without.input_tokens

    with pytest.raises(anthropic.BadRequestError) as bad:
        await c.messages.create(
            model=MODEL,
            max_tokens=50,
            tools=TOOLS,
            tool_choice={"type": "tool", "name": "inconnu"},
            messages=ask,
        )
    assert "inconnu" in bad.value.message
