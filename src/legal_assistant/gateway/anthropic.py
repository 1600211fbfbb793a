"""Anthropic Messages ⇄ OpenAI chat: the request, the answer, the event sequence.

Supported: system prompt (string or text blocks), multi-turn text content, `max_tokens`,
`temperature`, `top_p`, `top_k`, `stop_sequences`, `stop_reason` (`end_turn`,
`max_tokens`, `stop_sequence`) and `usage`. What a local text model cannot do (images,
documents, tools, extended thinking, an assistant prefill) is refused with Anthropic's
`invalid_request_error` and a message naming the feature — never silently dropped,
which would give the client a confident answer to a question it did not ask.

Stop sequences are matched here, not by the engine: an OpenAI `finish_reason: "stop"`
does not say whether a stop sequence or the end of the turn ended the answer, and
Anthropic's `stop_reason`/`stop_sequence` must. Text that could be the start of a stop
sequence is held back until it is not (nothing is held when no stop sequence is given),
and the upstream request is closed at the match so the engine stops generating.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from legal_assistant.errors import LegalAssistantError

# Request fields for features a local text model does not have.
_UNSUPPORTED_FIELDS = {
    "tools": "tools (tool use)",
    "mcp_servers": "MCP servers",
    "container": "containers",
}
_UNSUPPORTED_BLOCKS = {
    "image": "image content blocks",
    "document": "document content blocks",
    "tool_use": "tool_use content blocks",
    "tool_result": "tool_result content blocks",
    "server_tool_use": "server tool use",
    "web_search_tool_result": "web search results",
    "thinking": "thinking content blocks",
    "redacted_thinking": "thinking content blocks",
    "search_result": "search_result content blocks",
}
_STOP_REASONS = {"length": "max_tokens", "stop": "end_turn"}


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
        "text only. Send text content blocks."
    )


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    openai: dict[str, Any]  # an OpenAI chat body, without `model` and `stream`
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()


def _text_of(content: Any, where: str) -> str:
    """The text of a message's content: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{where}: content must be a string or a list of content blocks")
    parts: list[str] = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{where}.content.{i}: expected a content block with a 'type'")
        kind = block["type"]
        if kind in _UNSUPPORTED_BLOCKS:
            raise unsupported(_UNSUPPORTED_BLOCKS[kind])
        if kind != "text":
            raise invalid(f"{where}.content.{i}: unknown content block type {kind[:40]!r}")
        if not isinstance(block.get("text"), str):
            raise invalid(f"{where}.content.{i}.text: a string is required")
        parts.append(block["text"])
    return "".join(parts)


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    system = body.get("system")
    if system is not None:
        text = _text_of(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: a non-empty list of messages is required")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise invalid(f"messages.{i}: expected an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"messages.{i}.role: expected 'user' or 'assistant'")
        out.append({"role": str(role), "content": _text_of(m.get("content"), f"messages.{i}")})
    if out[-1]["role"] == "assistant":
        raise invalid(
            "a final assistant message (prefill) is not supported: the local engines "
            "start a new assistant turn. End with a user message."
        )
    return out


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
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        raise unsupported("extended thinking requests")
    openai: dict[str, Any] = {"messages": _messages(body)}
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


class StopScanner:
    """Cuts a text stream at the first stop sequence; holds back only a tail that could
    still become one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.matched: str | None = None
        self._held = ""
        self._keep = max((len(s) for s in stops), default=1) - 1

    def push(self, text: str) -> str:
        """What may be shown of `text` now; sets `matched` at a stop sequence."""
        if not self.stops:
            return text
        buf = self._held + text
        hits = [(i, s) for s in self.stops if (i := buf.find(s)) >= 0]
        if hits:
            # The match that completes first, as a character-by-character reader would
            # see it, whatever the chunking (ties: the longer one, which starts earlier).
            at, self.matched = min(hits, key=lambda h: (h[0] + len(h[1]), h[0]))
            self._held = ""
            return buf[:at]
        for k in range(min(self._keep, len(buf)), 0, -1):
            if any(s.startswith(buf[-k:]) for s in self.stops):
                self._held = buf[-k:]
                return buf[:-k]
        self._held = ""
        return buf

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


PING = sse("ping", {"type": "ping"})
_DELTA_HEAD = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
    b'"delta": {"type": "text_delta", "text": '
)
_DELTA_TAIL = b"}}\n\n"


def error_event(error_type: str, message: str) -> bytes:
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}})


@dataclass
class MessageBuilder:
    """Turns the engine's OpenAI chunks into one Anthropic message: its stream events
    (`start`, `feed`, `finish`) and, for a plain request, the whole message."""

    model: str
    stop_sequences: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex[:24]}")
    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int | None = None
    chunks: int = 0

    def __post_init__(self) -> None:
        self._scanner = StopScanner(self.stop_sequences)

    @property
    def stopped(self) -> bool:
        """A stop sequence matched: the caller closes the upstream request."""
        return self._scanner.matched is not None

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Not known before the engine's usage arrives: the final message_delta has it.
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message}) + sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """One OpenAI chunk → the `text_delta` event to send (or b"")."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = int(usage.get("prompt_tokens") or 0)
            self.output_tokens = int(usage.get("completion_tokens") or 0)
        piece = ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if content:
                self.chunks += 1
                piece += content
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if self.stopped or not piece:
            return b""
        return self._delta(self._scanner.push(piece))

    def _delta(self, text: str) -> bytes:
        if not text:
            return b""
        self.text.append(text)
        # The hot path (one per token): only the text is encoded; same bytes as `sse()`.
        return _DELTA_HEAD + json.dumps(text, ensure_ascii=False).encode() + _DELTA_TAIL

    @property
    def stop_reason(self) -> str:
        if self.stopped:
            return "stop_sequence"
        return _STOP_REASONS.get(self.finish_reason or "stop", "end_turn")

    @property
    def usage(self) -> dict[str, int]:
        # Cut at a stop sequence, the engine's own count never came: count the chunks.
        out = self.output_tokens if self.output_tokens is not None and not self.stopped else None
        return {"input_tokens": self.input_tokens, "output_tokens": out or self.chunks}

    def finish(self) -> bytes:
        tail = b"" if self.stopped else self._delta(self._scanner.flush())
        return (
            tail
            + sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            + sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self.stop_reason,
                        "stop_sequence": self._scanner.matched,
                    },
                    "usage": self.usage,
                },
            )
            + sse("message_stop", {"type": "message_stop"})
        )

    def message(self) -> dict[str, Any]:
        if not self.stopped:
            self._delta(self._scanner.flush())
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": "".join(self.text)}],
            "stop_reason": self.stop_reason,
            "stop_sequence": self._scanner.matched,
            "usage": self.usage,
        }


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
