"""The pure Ollama ⇄ OpenAI translation (`legal_assistant.gateway.ollama`) and the
Ollama-style model names the catalog derives: `keep_alive` durations, options, refusals,
the answer's lines and counters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from legal_assistant.catalog import (
    ollama_name,
    parse_model_id,
    parse_ollama_name,
    resolve_model_name,
)
from legal_assistant.errors import LegalAssistantError
from legal_assistant.gateway import ollama as tr


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (0, 0.0),
        (-1, -1.0),
        (300, 300.0),
        ("0", 0.0),
        ("-1", -1.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("300ms", 0.3),
        ("-1m", -60.0),
    ],
)
def test_keep_alive_numbers_and_go_durations(value: Any, seconds: float | None) -> None:
    assert (
        tr.parse_keep_alive(value) == pytest.approx(seconds)
        if seconds
        else (tr.parse_keep_alive(value) == seconds)
    )


@pytest.mark.parametrize("value", ["soon", "5 minutes", "m5", True, [], "1x"])
def test_keep_alive_refuses_what_is_not_a_duration(value: Any) -> None:
    with pytest.raises(LegalAssistantError) as caught:
        tr.parse_keep_alive(value)
    assert "keep_alive" in caught.value.detail


def test_names_round_trip_and_both_forms_resolve() -> None:
    for model_id, name in [
        ("mlx:smollm2-135m", "smollm2-135m:mlx"),
        ("llamacpp:smollm2-135m", "smollm2-135m:llamacpp"),
        (
            "mlx:mlx-community/Qwen2.5-3B-Instruct-4bit",
            "mlx-community/Qwen2.5-3B-Instruct-4bit:mlx",
        ),
        ("ollama:qwen2.5:7b", "qwen2.5:7b"),
        ("mlx:/models/my-model", "mlx:/models/my-model"),
    ]:
        ref = parse_model_id(model_id)
        assert ollama_name(ref) == name
        assert resolve_model_name(model_id) == ref
        if ref.provider != "ollama":
            assert resolve_model_name(name) == ref
    assert parse_ollama_name("qwen2.5:7b") is None  # a tag that is no provider of ours
    with pytest.raises(LegalAssistantError):
        parse_ollama_name("../etc:mlx")  # validated like any id


def test_chat_and_generate_requests() -> None:
    body = {
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "options": {"num_predict": 5, "temperature": 0.1, "stop": ["\n"], "num_ctx": 4096,
                    "repeat_penalty": 1.1, "seed": 3},
        "think": False,
    }  # fmt: skip
    assert tr.chat_request(body) == {
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "max_tokens": 5,
        "temperature": 0.1,
        "stop": ["\n"],
        "seed": 3,
        "repetition_penalty": 1.1,
        "repeat_penalty": 1.1,
    }
    assert "max_tokens" not in tr.chat_request({"messages": [], "options": {"num_predict": -1}})
    path, openai = tr.generate_request({"prompt": "P", "system": "S"})
    assert path == "/v1/chat/completions" and openai["messages"][0] == {
        "role": "system",
        "content": "S",
    }
    path, openai = tr.generate_request({"prompt": "P", "raw": True})
    assert path == "/v1/completions" and openai == {"prompt": "P"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": [{"role": "user", "content": "x", "images": ["a"]}]}, "images"),
        ({"messages": [], "tools": [{"type": "function"}]}, "tools"),
        ({"messages": [], "format": "json"}, "format"),
        ({"messages": [], "think": True}, "think"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]}, "tool_calls"),
        ({"messages": "hi"}, "messages"),
    ],
)
def test_chat_refusals_name_the_feature(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(LegalAssistantError) as caught:
        tr.chat_request(body)
    assert needle in caught.value.detail


def test_reply_lines_and_final_counters() -> None:
    reply = tr.Reply("smollm2-135m:mlx", "chat", started=0.0)
    assert json.loads(reply.line(""))["message"] == {"role": "assistant", "content": ""}
    reply.feed({"choices": [{"delta": {"content": "Bon"}, "finish_reason": None}]})
    reply.feed({"choices": [{"delta": {"content": "jour"}, "finish_reason": "length"}]})
    reply.feed({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})
    final = json.loads(reply.final(load_s=1.0, ready_at=1.0))
    assert final["done"] is True and final["done_reason"] == "length"
    assert final["prompt_eval_count"] == 9 and final["eval_count"] == 2
    assert final["load_duration"] == 1_000_000_000
    whole = reply.whole(1.0, 1.0)
    assert whole["message"]["content"] == "Bonjour" and whole["created_at"].endswith("Z")


def test_embed_inputs_and_vectors() -> None:
    assert tr.embed_inputs({"input": "a"}, legacy=False) == ["a"]
    assert tr.embed_inputs({"input": ["a", "b"]}, legacy=False) == ["a", "b"]
    assert tr.embed_inputs({"prompt": "a"}, legacy=True) == ["a"]
    with pytest.raises(LegalAssistantError):
        tr.embed_inputs({"input": 3}, legacy=False)
    with pytest.raises(LegalAssistantError):
        tr.embed_inputs({"input": "a", "dimensions": 8}, legacy=False)
    data = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}
    assert tr.embedding_vectors(data, 2, "embed:x") == [[1.0], [2.0]]
    with pytest.raises(LegalAssistantError):
        tr.embedding_vectors({"data": []}, 1, "embed:x")


def test_tool_calls_and_results_pair_by_name_with_stable_ids() -> None:
    tool = {"type": "function", "function": {"name": "météo", "parameters": {}}}
    body = {
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "Temps ?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "heure", "arguments": {}}},
                    {"function": {"name": "météo", "arguments": {"ville": "Orléans"}}},
                ],
            },
            {"role": "tool", "tool_name": "météo", "content": "pluie"},
            {"role": "tool", "content": "midi"},
        ],
    }
    openai = tr.chat_request(body)
    assert openai["tools"] == [tool]
    calls = openai["messages"][1]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_1_0", "call_1_1"]
    assert calls[1]["function"] == {"name": "météo", "arguments": '{"ville": "Orléans"}'}
    assert openai["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_1_1", "content": "pluie"},
        {"role": "tool", "tool_call_id": "call_1_0", "content": "midi"},
    ]
    assert tr.chat_request(body) == openai  # the same history, the same prompt


def test_streamed_tool_call_pieces_become_whole_ollama_calls() -> None:
    reply = tr.Reply("m", "chat")
    for delta in (
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "lire", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"chemin": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"é.txt"}'}}]},
    ):
        assert reply.feed({"choices": [{"index": 0, "delta": delta}]}) == ""
    line = json.loads(reply.calls_line())
    assert line["done"] is False and line["message"]["content"] == ""
    assert line["message"]["tool_calls"] == [
        {"id": "c1", "function": {"index": 0, "name": "lire", "arguments": {"chemin": "é.txt"}}}
    ]
    assert reply.whole(0.0, None)["message"]["tool_calls"] == line["message"]["tool_calls"]
    broken = tr.Reply("m", "chat")
    broken.feed(
        {"choices": [{"delta": {"tool_calls": [{"function": {"name": "x", "arguments": "[1"}}]}}]}
    )
    with pytest.raises(LegalAssistantError):
        broken.calls_line()
