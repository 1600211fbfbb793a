"""Anthropic Messages → OpenAI chat: the request, and Anthropic's error shapes.

Translated: the system prompt (string or text blocks), multi-turn content, `max_tokens`,
`temperature`, `top_p`, `top_k`, `stop_sequences`, and tool use:

- `tools` (`name`, `description`, `input_schema`) → OpenAI function tools;
- `tool_choice`: `auto` → `"auto"`, `any` → `"required"`, `tool` → `"required"` with only
  that tool offered (the one form every engine enforces), `none` → no tools sent;
  `disable_parallel_tool_use` → `parallel_tool_calls: false`;
- an assistant's `tool_use` blocks → its `tool_calls` (arguments as a JSON string);
- tools with `defer_loading: true` are not shown to the engine until a `tool_reference`
  block in a tool result (Claude Code's tool search) loads them, as Anthropic does;
- a user's `tool_result` blocks → `role: "tool"` messages (`tool_call_id`), placed right
  after the assistant message, before the user's own text; a result with `is_error` is
  prefixed `Error: ` (OpenAI's tool message has no error flag: the model reads it).

System messages inside `messages` (Claude Code sends one) join the system prompt.
Accepted and ignored: `thinking` (the local models do not think on request: the answer
has no thinking blocks, which clients accept), `output_config.effort`,
`context_management`, `metadata`, `cache_control`. What a local model cannot do
(images, documents, server tools, structured outputs, an assistant prefill) is refused
with Anthropic's `invalid_request_error` and a message naming the feature — never
silently dropped, which would give the client a confident answer to a question it did
not ask. The answer side is in `anthropic_reply.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from legal_assistant.errors import LegalAssistantError

# Request fields for features a local model does not have.
_UNSUPPORTED_FIELDS = {
    "mcp_servers": "MCP servers",
    "container": "containers",
}
_UNSUPPORTED_BLOCKS = {
    "image": "image content blocks",
    "document": "document content blocks",
    "server_tool_use": "server tool use",
    "web_search_tool_result": "web search results",
    "thinking": "thinking content blocks",
    "redacted_thinking": "thinking content blocks",
    "search_result": "search_result content blocks",
}
MAX_TOOL_NAME = 128
ERROR_PREFIX = "Error: "


def invalid(detail: str) -> LegalAssistantError:
    """A refused request; `detail` is what the client shows (Anthropic's `message`)."""
    return LegalAssistantError(
        "bad_request",
        detail,
        message_fr=f"❌ Requête invalide : {detail}",
        message_en=f"❌ Invalid request: {detail}",
    )


def unsupported(feature: str) -> LegalAssistantError:
    return invalid(
        f"{feature} are not supported by this gateway: the local models it serves take "
        "text and tool use only."
    )


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    openai: dict[str, Any]  # an OpenAI chat body, without `model` and `stream`
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()

    @property
    def uses_tools(self) -> bool:
        """Tools reach the engine (so the model must be able to call them)."""
        return bool(self.openai.get("tools"))


def _block(block: Any, where: str) -> str:
    """A content block's type, validated as a dict with a 'type'."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise invalid(f"{where}: expected a content block with a 'type'")
    kind = str(block["type"])
    if kind in _UNSUPPORTED_BLOCKS:
        raise unsupported(_UNSUPPORTED_BLOCKS[kind])
    return kind


def _text(block: dict[str, Any], where: str) -> str:
    if not isinstance(block.get("text"), str):
        raise invalid(f"{where}.text: a string is required")
    return str(block["text"])


def _text_of(content: Any, where: str) -> str:
    """The text of a content: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{where}: content must be a string or a list of content blocks")
    parts: list[str] = []
    for i, block in enumerate(content):
        kind = _block(block, f"{where}.content.{i}")
        if kind != "text":
            raise invalid(f"{where}.content.{i}: expected a text block, not {kind[:40]!r}")
        parts.append(_text(block, f"{where}.content.{i}"))
    return "".join(parts)


def _id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise invalid(f"{where}: a tool use id (a non-empty string) is required")
    return value


def _result_text(content: Any, where: str) -> str:
    """A tool result's content: a string, or text and `tool_reference` blocks (Claude
    Code's tool search answers with the names of the deferred tools it loaded)."""
    if not isinstance(content, list):
        return _text_of(content, where)
    parts: list[str] = []
    for i, block in enumerate(content):
        kind = _block(block, f"{where}.{i}")
        if kind == "tool_reference":
            parts.append(f"Tool loaded: {str(block.get('tool_name'))[:MAX_TOOL_NAME]}\n")
        elif kind == "text":
            parts.append(_text(block, f"{where}.{i}"))
        else:
            raise invalid(f"{where}.{i}: expected a text block, not {kind[:40]!r}")
    return "".join(parts)


def _referenced_tools(messages: Any) -> set[str]:
    """Deferred tools the conversation loaded (`tool_reference` blocks in tool results)."""
    names: set[str] = set()
    for m in messages if isinstance(messages, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        for block in content if isinstance(content, list) else ():
            inner = block.get("content") if isinstance(block, dict) else None
            for ref in inner if isinstance(inner, list) else ():
                if isinstance(ref, dict) and ref.get("type") == "tool_reference":
                    names.add(str(ref.get("tool_name")))
    return names


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    content = block.get("content")
    text = "" if content is None else _result_text(content, f"{where}.content")
    if block.get("is_error") is True:
        text = ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": _id(block.get("tool_use_id"), where), "content": text}


def _user(content: Any, where: str) -> list[dict[str, Any]]:
    """A user message: its tool results first (OpenAI wants them right after the
    assistant's calls), then its text, if any."""
    if not isinstance(content, list):
        return [{"role": "user", "content": _text_of(content, where)}]
    results: list[dict[str, Any]] = []
    parts: list[str] = []
    for i, block in enumerate(content):
        at = f"{where}.content.{i}"
        kind = _block(block, at)
        if kind == "tool_result":
            results.append(_tool_result(block, at))
        elif kind == "text":
            parts.append(_text(block, at))
        else:
            raise invalid(f"{at}: unknown content block type {kind[:40]!r}")
    if parts or not results:
        results.append({"role": "user", "content": "".join(parts)})
    return results


def _assistant(content: Any, where: str) -> dict[str, Any]:
    if not isinstance(content, list):
        return {"role": "assistant", "content": _text_of(content, where)}
    parts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content.{i}"
        kind = _block(block, at)
        if kind == "text":
            parts.append(_text(block, at))
        elif kind == "tool_use":
            name, args = block.get("name"), block.get("input", {})
            if not isinstance(name, str) or not name:
                raise invalid(f"{at}.name: a tool name is required")
            if not isinstance(args, dict):
                raise invalid(f"{at}.input: an object is required")
            function = {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}
            calls.append({"id": _id(block.get("id"), at), "type": "function", "function": function})
        else:
            raise invalid(f"{at}: unknown content block type {kind[:40]!r}")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts)}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system: list[str] = []
    if body.get("system") is not None:
        system.append(_text_of(body["system"], "system"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: a non-empty list of messages is required")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise invalid(f"messages.{i}: expected an object with 'role' and 'content'")
        role = m.get("role")
        if role == "user":
            out.extend(_user(m.get("content"), f"messages.{i}"))
        elif role == "assistant":
            out.append(_assistant(m.get("content"), f"messages.{i}"))
        elif role == "system":
            # Claude Code sends its environment as a system message after the first user
            # message; most chat templates accept a system message only first: it joins
            # the system prompt (stable across a session, so the engine's prefix cache
            # still holds).
            system.append(_text_of(m.get("content"), f"messages.{i}"))
        else:
            raise invalid(f"messages.{i}.role: expected 'user', 'assistant' or 'system'")
    if not out:
        raise invalid("messages: at least one user message is required")
    if out[-1]["role"] == "assistant":
        raise invalid(
            "a final assistant message (prefill) is not supported: the local engines "
            "start a new assistant turn. End with a user message."
        )
    text = "\n\n".join(t for t in system if t)
    return [{"role": "system", "content": text}, *out] if text else out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools: a list of tools is required")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    loaded = _referenced_tools(body.get("messages"))
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools.{i}: expected an object with 'name' and 'input_schema'")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise unsupported(f"server tools ({str(kind)[:60]!r})")
        name = tool.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOOL_NAME:
            raise invalid(f"tools.{i}.name: a name of 1 to {MAX_TOOL_NAME} characters is required")
        if any(not c.isprintable() or c.isspace() for c in name):
            raise invalid(f"tools.{i}.name: no spaces or control characters")
        if name in names:
            raise invalid(f"tools.{i}.name: {name!r} is given twice")
        names.add(name)
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise invalid(f"tools.{i}.input_schema: a JSON schema object is required")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        description = tool.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise invalid(f"tools.{i}.description: a string is required")
            function["description"] = description
        # A deferred tool stays out of the model's sight until a tool search loads it
        # (Anthropic's semantics; the engine has no tool search of its own).
        if tool.get("defer_loading") is not True or name in loaded:
            out.append({"type": "function", "function": function})
    return out


def _tool_fields(body: dict[str, Any]) -> dict[str, Any]:
    """`tools`, `tool_choice` and `parallel_tool_calls` of the OpenAI body (or none)."""
    tools = _tools(body)
    choice = body.get("tool_choice")
    if choice is None:
        choice = {"type": "auto"}
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice: expected {'type': 'auto' | 'any' | 'tool' | 'none'}")
    kind = choice["type"]
    if kind == "none" or (not tools and kind == "auto"):
        return {}
    if not tools:
        raise invalid(f"tool_choice {kind!r} requires tools")
    fields: dict[str, Any] = {"tools": tools, "tool_choice": "auto"}
    if kind == "any":
        fields["tool_choice"] = "required"
    elif kind == "tool":
        name = choice.get("name")
        chosen = [t for t in tools if t["function"]["name"] == name]
        if not chosen:
            raise invalid(f"tool_choice.name: {str(name)[:80]!r} is not one of the tools")
        fields.update(tools=chosen, tool_choice="required")
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("tool_choice.disable_parallel_tool_use: a boolean is required")
    if parallel:
        fields["parallel_tool_calls"] = False
    return fields


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise invalid(f"{name}: a number between {lo:g} and {hi:g} is required")
    return float(value)


def parse_request(body: dict[str, Any], *, count_only: bool = False) -> MessagesRequest:
    """Validate a Messages body (or a count_tokens body) and translate it."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: a model id is required (e.g. mlx:smollm2-135m)")
    for name, feature in _UNSUPPORTED_FIELDS.items():
        if body.get(name):
            raise unsupported(feature)
    output = body.get("output_config")
    if isinstance(output, dict) and output.get("format"):
        raise unsupported("structured outputs (output_config.format)")
    openai: dict[str, Any] = {"messages": _messages(body), **_tool_fields(body)}
    if not count_only:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise invalid("max_tokens: a positive integer is required")
        openai["max_tokens"] = max_tokens
    for name, lo, hi in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)):
        value = _number(body, name, lo, hi)
        if value is not None:
            openai[name] = value
    top_k = body.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise invalid("top_k: a non-negative integer is required")
        openai["top_k"] = top_k
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise invalid("stop_sequences: a list of non-empty strings is required")
    return MessagesRequest(model, openai, bool(body.get("stream")), tuple(stops))


# Our HTTP statuses → Anthropic's error types (https://docs.anthropic.com/en/api/errors).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def error_status(err: LegalAssistantError) -> int:
    if err.code in ("unknown_provider", "model_not_found"):
        return 404
    return err.http_status


def error_body(err: LegalAssistantError) -> dict[str, Any]:
    """Anthropic's error shape; the message says what to do, the detail what happened."""
    status = error_status(err)
    message = err.detail if err.code == "bad_request" and err.detail else err.message_en
    if err.detail and message != err.detail:
        message += f" ({err.detail})"
    return {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
    }
