"""Tokens a response spent, read from what the engine reported, whatever the protocol:

* OpenAI (`/v1`, our chat's `done` event): `usage.total_tokens` — in the JSON body, or
  in the stream's last chunk when the client asked for `stream_options.include_usage`;
  a stream without it counts its content chunks (one per token for these engines);
* Anthropic (`/v1/messages`): `usage.input_tokens + usage.output_tokens` (the last
  `message_delta` carries the totals);
* Ollama (`/ollama/api/*`): `prompt_eval_count + eval_count` of the final line.

Fed the response bytes as they are sent (JSON, SSE `data:` lines or NDJSON lines),
keeping only the current partial line, so a long stream is not buffered.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 4 * 1024 * 1024  # a single JSON body larger than this is not metered further


def tokens_in(obj: Any) -> int | None:
    """The tokens one JSON object reports, or None when it reports none."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if isinstance(usage, dict):
        total = usage.get("total_tokens")
        if isinstance(total, int):
            return total
        parts = [usage.get(k) for k in ("input_tokens", "output_tokens")]
        if any(isinstance(p, int) for p in parts):
            return sum(p for p in parts if isinstance(p, int))
    counts = [obj.get(k) for k in ("prompt_eval_count", "eval_count")]
    if any(isinstance(c, int) for c in counts):
        return sum(c for c in counts if isinstance(c, int))
    message = obj.get("message")  # Anthropic's message_start wraps its usage
    if isinstance(message, dict) and isinstance(message.get("usage"), dict):
        return tokens_in(message)
    return None


class UsageMeter:
    def __init__(self) -> None:
        self._pending = b""
        self.reported = 0  # the largest count the engine reported (they are cumulative)
        self.chunks = 0  # streamed chunks with generated content (the fallback)

    def feed(self, data: bytes) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._line(line)
        if len(self._pending) > MAX_LINE:
            self._pending = b""

    def close(self) -> int:
        """All the bytes are in: the tokens spent."""
        if self._pending:
            self._line(self._pending)
            self._pending = b""
        return self.reported or self.chunks

    def _line(self, line: bytes) -> None:
        line = line.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        if not line.startswith(b"{"):
            return
        try:
            obj = json.loads(line)
        except ValueError:
            return
        found = tokens_in(obj)
        if found is not None:
            self.reported = max(self.reported, found)
        choices = obj.get("choices") if isinstance(obj, dict) else None
        if isinstance(choices, list) and any(
            isinstance(c, dict) and isinstance(c.get("delta"), dict) and c["delta"].get("content")
            for c in choices
        ):
            self.chunks += 1
