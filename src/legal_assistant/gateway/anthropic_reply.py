"""OpenAI chat chunks → one Anthropic message: its stream events and its final form.

Content blocks follow the engine's answer in order: text becomes a `text` block, each
OpenAI tool call (`delta.tool_calls[i]`, keyed by its `index`) a `tool_use` block opened
with its id, name and an empty `input`, whose arguments arrive as `input_json_delta`
events (`partial_json`, the engine's fragments as they come). A block is closed when the
next one opens, as Anthropic's own stream does. The tool call ids are the engine's (when
they are usable as Anthropic ids), so the id a client sends back in its `tool_result`
is the one the engine's chat template sees in the history: stable across the turn.

Stop sequences are matched here, not by the engine: an OpenAI `finish_reason: "stop"`
does not say whether a stop sequence or the end of the turn ended the answer, and
Anthropic's `stop_reason`/`stop_sequence` must. Text that could be the start of a stop
sequence is held back until it is not (nothing is held when no stop sequence is given),
and the upstream request is closed at the match so the engine stops generating.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

_STOP_REASONS = {"length": "max_tokens", "stop": "end_turn", "tool_calls": "tool_use"}
_USABLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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
# The hot path (one event per token): only the text is encoded; same bytes as `sse()`.
_DELTA_HEAD = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": %d, '
    b'"delta": {"type": "text_delta", "text": '
)
_DELTA_TAIL = b"}}\n\n"


def error_event(error_type: str, message: str) -> bytes:
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}})


def tool_use_id(engine_id: Any) -> str:
    """The engine's call id when it can stand as an Anthropic id, else a fresh one."""
    if isinstance(engine_id, str) and _USABLE_ID.match(engine_id):
        return engine_id
    return f"toolu_{uuid.uuid4().hex[:24]}"


def tool_input(arguments: str) -> dict[str, Any] | None:
    """A tool call's arguments as Anthropic's `input` (None: not a JSON object)."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class _Block:
    """One content block of the answer: text, or a tool call (`id` set)."""

    index: int
    parts: list[str] = field(default_factory=list)
    id: str | None = None
    name: str = ""

    def content(self) -> dict[str, Any]:
        if self.id is None:
            return {"type": "text", "text": "".join(self.parts)}
        return {
            "type": "tool_use",
            "id": self.id,
            "name": self.name,
            "input": tool_input("".join(self.parts)) or {},
        }


@dataclass
class MessageBuilder:
    """Turns the engine's OpenAI chunks into one Anthropic message: its stream events
    (`start`, `feed`, `finish`) and, for a plain request, the whole message.

    Without tools the text block opens with the message (as Anthropic's does, before the
    engine answers); with tools, each block opens when its first content arrives, since
    the answer may well begin with a tool call."""

    model: str
    stop_sequences: tuple[str, ...] = ()
    tools: bool = False
    id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex[:24]}")
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int | None = None
    chunks: int = 0

    def __post_init__(self) -> None:
        self._scanner = StopScanner(self.stop_sequences)
        self._blocks: list[_Block] = []
        self._open: _Block | None = None
        self._calls: dict[int, _Block] = {}  # the engine's tool call index → its block
        self._text_head = b""  # the open text block's delta prefix (encoded once)

    @property
    def stopped(self) -> bool:
        """A stop sequence matched: the caller closes the upstream request."""
        return self._scanner.matched is not None

    @property
    def text(self) -> str:
        return "".join("".join(b.parts) for b in self._blocks if b.id is None)

    @property
    def tool_calls(self) -> int:
        return len(self._calls)

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
        out = sse("message_start", {"type": "message_start", "message": message})
        return out if self.tools else out + self._open_block(_Block(0))

    def _open_block(self, block: _Block) -> bytes:
        out = self._close_block()
        self._blocks.append(block)
        self._open = block
        if block.id is None:
            self._text_head = _DELTA_HEAD % block.index
        content = (
            {"type": "text", "text": ""}
            if block.id is None
            else {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
        )
        start = {"type": "content_block_start", "index": block.index, "content_block": content}
        return out + sse("content_block_start", start)

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open.index, None
        return sse("content_block_stop", {"type": "content_block_stop", "index": index})

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """One OpenAI chunk → the events to send (or b"")."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = int(usage.get("prompt_tokens") or 0)
            self.output_tokens = int(usage.get("completion_tokens") or 0)
        out = b""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if content and self._scanner.matched is None:
                self.chunks += 1
                out += self._text(self._scanner.push(content))
            calls = delta.get("tool_calls")
            if calls and isinstance(calls, list) and self._scanner.matched is None:
                for position, call in enumerate(calls):
                    if isinstance(call, dict):
                        out += self._tool_call(call, position)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _text(self, text: str) -> bytes:
        if not text:
            return b""
        block, out = self._open, b""
        if block is None or block.id is not None:
            block = _Block(len(self._blocks))
            out = self._open_block(block)
        block.parts.append(text)
        return out + self._text_head + json.dumps(text, ensure_ascii=False).encode() + _DELTA_TAIL

    def _tool_call(self, call: dict[str, Any], position: int) -> bytes:
        index = call.get("index")
        key = index if isinstance(index, int) else len(self._calls) + position
        function = call.get("function") or {}
        out = b""
        block = self._calls.get(key)
        if block is None:
            # Text held back for a stop sequence is text after all: the answer moved on.
            out += self._text(self._scanner.flush())
            name = function.get("name")
            block = _Block(len(self._blocks), id=tool_use_id(call.get("id")), name=str(name or ""))
            self._calls[key] = block
            self.chunks += 1
            out += self._open_block(block)
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # some servers send an object, not a JSON string
            arguments = json.dumps(arguments, ensure_ascii=False)
        if isinstance(arguments, str) and arguments:
            block.parts.append(arguments)
            delta = {"type": "input_json_delta", "partial_json": arguments}
            event = {"type": "content_block_delta", "index": block.index, "delta": delta}
            out += sse("content_block_delta", event)
        return out

    def bad_tool_call(self) -> str | None:
        """Why a tool call cannot be given to the client (arguments that are not a JSON
        object), or None."""
        for block in self._calls.values():
            if not block.name:
                return "the engine produced a tool call without a name"
            if tool_input("".join(block.parts)) is None:
                return f"the engine's arguments for {block.name!r} are not a JSON object"
        return None

    @property
    def stop_reason(self) -> str:
        if self.stopped:
            return "stop_sequence"
        if self.finish_reason == "length":
            return "max_tokens"
        if self._calls:
            return "tool_use"
        return _STOP_REASONS.get(self.finish_reason or "stop", "end_turn")

    @property
    def usage(self) -> dict[str, int]:
        # Cut at a stop sequence, the engine's own count never came: count the chunks.
        out = self.output_tokens if self.output_tokens is not None and not self.stopped else None
        return {"input_tokens": self.input_tokens, "output_tokens": out or self.chunks}

    def finish(self) -> bytes:
        out = b"" if self.stopped else self._text(self._scanner.flush())
        if not self._blocks:  # nothing at all: one empty text block, as without tools
            out += self._open_block(_Block(0))
        out += self._close_block()
        bad = self.bad_tool_call()
        if bad is not None:
            return out + error_event("api_error", bad)
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self._scanner.matched}
        return (
            out
            + sse("message_delta", {"type": "message_delta", "delta": delta, "usage": self.usage})
            + sse("message_stop", {"type": "message_stop"})
        )

    def message(self) -> dict[str, Any]:
        if not self.stopped:
            self._text(self._scanner.flush())
        content = [b.content() for b in self._blocks if b.id is not None or b.parts]
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content or [{"type": "text", "text": ""}],
            "stop_reason": self.stop_reason,
            "stop_sequence": self._scanner.matched,
            "usage": self.usage,
        }
