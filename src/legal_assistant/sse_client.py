"""A minimal server-sent-events reader for the CLI (talking to a running backend)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

_LINE_END = re.compile(r"\r\n|\r|\n")


async def aiter_sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The lines of an event stream, split only at CRLF, LF or CR as the SSE format says.
    Not `aiter_lines`: it splits like `str.splitlines`, also at U+2028, U+0085, form
    feeds..., which JSON data may carry raw (model output), cutting a data line in two."""
    pending = ""
    async for text in response.aiter_text():
        pending += text
        # A trailing "\r" may be the first half of a "\r\n": keep it for the next chunk.
        cut = len(pending) - 1 if pending.endswith("\r") else len(pending)
        *lines, rest = _LINE_END.split(pending[:cut])
        pending = rest + pending[cut:]
        for line in lines:
            yield line
    if pending:
        for line in _LINE_END.split(pending):
            yield line


async def iter_sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event, data = "message", list[str]()
    async for line in aiter_sse_lines(response):
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, json.loads("\n".join(data))
