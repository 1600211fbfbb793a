"""Tool use through `/v1` (the official `openai` client) and `/ollama/api/chat` (the
official `ollama` client), streamed and not, against the scripted engine
(tests/fakes/scripted_engine.py: a stand-in for `llama-server --jinja` that calls the
tools a prompt names, then answers from their results) configured as an `openai:`
endpoint. Full round trips with two tool calls in one turn and non-ASCII names and
arguments; what the engine received is inspected."""

from __future__ import annotations

import json
from typing import Any

import ollama
import pytest

MODEL = "openai:scripted"
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lire_fichier",
            "description": "Lit un fichier du dossier",
            "parameters": {"type": "object", "properties": {"chemin": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "chercher_décision",
            "description": "Cherche une décision",
            "parameters": {"type": "object", "properties": {"requête": {"type": "string"}}},
        },
    },
]
ARGS = ({"chemin": "bail é.txt"}, {"requête": "congé — Cass. 3e civ. « délai »"})
TWO_CALLS = (
    f"Lis et cherche.\ncall: lire_fichier {json.dumps(ARGS[0], ensure_ascii=False)}\n"
    f"call: chercher_décision {json.dumps(ARGS[1], ensure_ascii=False)}"
)
ANSWER = "Résultats : lire_fichier → Loyer : 800 € | chercher_décision → Aucune décision trouvée"


async def test_openai_client_tool_calls_streamed_and_not(scripted_gateway: Any) -> None:
    gw, engine = scripted_gateway
    client = gw.openai(max_retries=0)
    ask = [{"role": "user", "content": TWO_CALLS}]
    first = await client.chat.completions.create(
        model=MODEL, messages=ask, tools=TOOLS, tool_choice="auto", parallel_tool_calls=True
    )
    # Passed through as sent (only the model renamed to the endpoint's own name).
    sent = engine.requests[-1]
    assert sent["model"] == "scripted"
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["lire_fichier", "chercher_décision"]  # type: ignore[union-attr]
    assert [json.loads(c.function.arguments) for c in calls] == list(ARGS)  # type: ignore[union-attr]

    # Streamed: the engine's tool_calls deltas reach the client as they were sent — a
    # first delta per call with index, id, type and name, then argument fragments.
    deltas: list[Any] = []
    finish = None
    stream = await client.chat.completions.create(
        model=MODEL, messages=ask, tools=TOOLS, stream=True
    )
    async for chunk in stream:
        for c in chunk.choices:
            deltas.extend(c.delta.tool_calls or [])
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    heads = [d for d in deltas if d.id]
    assert [(d.index, d.type, d.function.name, d.function.arguments) for d in heads] == [
        (0, "function", "lire_fichier", ""),
        (1, "function", "chercher_décision", ""),
    ]
    for i, args in enumerate(ARGS):
        pieces = [d.function.arguments for d in deltas if d.index == i and not d.id]
        assert len(pieces) > 1 and json.loads("".join(pieces)) == args
    ids = [d.id for d in heads]

    history = [
        *ask,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": ids[i],
                    "type": "function",
                    "function": {"name": TOOLS[i]["function"]["name"], "arguments": json.dumps(a)},
                }
                for i, a in enumerate(ARGS)
            ],
        },
        {"role": "tool", "tool_call_id": ids[0], "content": "Loyer : 800 €"},
        {"role": "tool", "tool_call_id": ids[1], "content": "Aucune décision trouvée"},
    ]
    final = await client.chat.completions.create(model=MODEL, messages=history, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == ANSWER
    text = ""
    stream = await client.chat.completions.create(
        model=MODEL, messages=history, tools=TOOLS, stream=True
    )
    async for chunk in stream:
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == ANSWER


@pytest.mark.parametrize("stream", [False, True])
async def test_ollama_client_tool_calls_and_tool_results(
    scripted_gateway: Any, stream: bool
) -> None:
    gw, engine = scripted_gateway
    client = ollama.AsyncClient(host=f"{gw.url}/ollama", trust_env=False)
    ask = [{"role": "user", "content": TWO_CALLS}]
    if stream:
        parts = [
            p async for p in await client.chat("scripted:openai", ask, tools=TOOLS, stream=True)
        ]
        with_calls = [p for p in parts if p.message.tool_calls]
        assert len(with_calls) == 1 and parts[-1].done and not parts[-1].message.tool_calls
        message = with_calls[0].message
    else:
        response = await client.chat("scripted:openai", ask, tools=TOOLS)
        assert response.done and response.done_reason == "stop"
        message = response.message
    calls = message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("lire_fichier", ARGS[0]),
        ("chercher_décision", ARGS[1]),
    ]
    assert engine.requests[-1]["tools"] == TOOLS

    # Results name their tool (Ollama has no call ids): the second one answered first.
    history = [
        *ask,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_name": "chercher_décision", "content": "Aucune décision trouvée"},
        {"role": "tool", "tool_name": "lire_fichier", "content": "Loyer : 800 €"},
    ]
    if stream:
        parts = [
            p async for p in await client.chat("scripted:openai", history, tools=TOOLS, stream=True)
        ]
        text = "".join(p.message.content or "" for p in parts)
    else:
        text = (await client.chat("scripted:openai", history, tools=TOOLS)).message.content or ""
    sent = engine.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    call_ids = [c["id"] for c in sent[1]["tool_calls"]]
    assert [m["tool_call_id"] for m in sent[2:]] == [call_ids[1], call_ids[0]]
    assert (
        text
        == "Résultats : chercher_décision → Aucune décision trouvée | lire_fichier → Loyer : 800 €"
    )

    shown = await client.show("scripted:openai")
    assert "tools" in (shown.capabilities or [])
