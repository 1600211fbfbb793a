"""Tool use between the Ollama API and the engines' OpenAI chat format.

Ollama's `tools` already are OpenAI function tools: they are checked and passed on. The
differences are in the messages:

- an assistant's `tool_calls` carry `function.arguments` as an object (OpenAI: a JSON
  string) and often no `id` (the `ollama` Python client has none): each call gets one,
  derived from its place in the conversation (`call_<message>_<call>`), so the same
  history always gives the engine the same prompt (its prefix cache holds);
- a `role: "tool"` message names its tool (`tool_name`), not a call id: it answers the
  first call still unanswered with that name (or, without a name, the next unanswered
  call), as Ollama's own templates pair them; a `tool_call_id`, when given, wins.

In answers, the engine's `tool_calls` deltas are gathered (arguments arrive in pieces)
and given as Ollama gives them: whole calls, `function.arguments` an object, with the
engine's `id` and the call's `index` — in the last `done: false` line of a stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from legal_assistant.errors import LegalAssistantError


def _invalid(detail: str) -> LegalAssistantError:
    return LegalAssistantError(
        "bad_request",
        detail,
        message_fr=f"❌ Requête invalide : {detail}",
        message_en=f"❌ Invalid request: {detail}",
    )


def tools_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's tools, checked (OpenAI's function-tool shape, which is Ollama's)."""
    tools = body.get("tools")
    if not tools:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: a list of tools is required")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _invalid(f"tools[{i}]: expected {{'type': 'function', 'function': {{'name'}}}}")
        if tool.get("type", "function") != "function":
            raise _invalid(f"tools[{i}].type: only 'function' tools exist")
        out.append({"type": "function", "function": function})
    return out


def _arguments(value: Any, where: str) -> str:
    if isinstance(value, str):  # some clients send the JSON string, OpenAI-style
        return value
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise _invalid(f"{where}.function.arguments: an object is required")
    return json.dumps(value, ensure_ascii=False)


def assistant_calls(calls: Any, index: int) -> list[dict[str, Any]]:
    """An assistant message's `tool_calls` → OpenAI's (ids given when missing)."""
    if not isinstance(calls, list):
        raise _invalid(f"messages[{index}].tool_calls: a list is required")
    out: list[dict[str, Any]] = []
    for j, call in enumerate(calls):
        where = f"messages[{index}].tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _invalid(f"{where}: a function with a name is required")
        given = call.get("id")
        out.append(
            {
                "id": given if isinstance(given, str) and given else f"call_{index}_{j}",
                "type": "function",
                "function": {
                    "name": function["name"],
                    "arguments": _arguments(function.get("arguments"), where),
                },
            }
        )
    return out


def answered_call(
    message: dict[str, Any], pending: list[dict[str, Any]], index: int
) -> dict[str, Any]:
    """A `role: "tool"` message → OpenAI's, paired with the call it answers (removed
    from `pending`)."""
    content = message.get("content") or ""
    if not isinstance(content, str):
        raise _invalid(f"messages[{index}].content: a string is required")
    given, name = message.get("tool_call_id"), message.get("tool_name") or message.get("name")
    match = next((c for c in pending if c["id"] == given), None) if given else None
    if match is None and name:
        match = next((c for c in pending if c["function"]["name"] == name), None)
    if match is None and pending:
        match = pending[0]
    if match is not None:
        pending.remove(match)
        call_id = match["id"]
    else:  # a result for no call we know of: the engine still gets it, under its name
        call_id = str(given or f"call_{index}_{name or 'tool'}")
    return {"role": "tool", "tool_call_id": call_id, "content": content}


@dataclass
class _Call:
    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class ToolCalls:
    """The tool calls of one answer, gathered from the engine's deltas."""

    calls: dict[int, _Call] = field(default_factory=dict)

    def feed(self, delta: dict[str, Any]) -> None:
        items = delta.get("tool_calls")
        if not isinstance(items, list):
            return
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            index = item.get("index")
            key = index if isinstance(index, int) else len(self.calls) + position
            function = item.get("function") or {}
            call = self.calls.setdefault(key, _Call(str(item.get("id") or f"call_{key}")))
            if function.get("name"):
                call.name = str(function["name"])
            arguments = function.get("arguments")
            if isinstance(arguments, dict):
                arguments = json.dumps(arguments, ensure_ascii=False)
            if isinstance(arguments, str):
                call.arguments.append(arguments)

    def ollama(self) -> list[dict[str, Any]]:
        """Ollama's `message.tool_calls`; raises `upstream_error` for arguments that are
        not a JSON object."""
        out: list[dict[str, Any]] = []
        for i, call in enumerate(self.calls.values()):
            text = "".join(call.arguments).strip() or "{}"
            try:
                arguments = json.loads(text)
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict) or not call.name:
                raise LegalAssistantError(
                    "upstream_error",
                    f"the engine's tool call {call.name or '?'!r} has arguments that are "
                    "not a JSON object",
                )
            function = {"index": i, "name": call.name, "arguments": arguments}
            out.append({"id": call.id, "function": function})
        return out
