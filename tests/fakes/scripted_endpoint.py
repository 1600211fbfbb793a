"""A scripted OpenAI-compatible chat endpoint, for deterministic answers.

Stands in for a remote OpenAI-compatible server (vLLM, a lab's endpoint...) configured
through `OPENAI_ENDPOINTS`, when a test needs an exact answer the bundled model cannot be
made to give: an answer with right, wrong or missing citations, or a loop that never ends
by itself. It speaks the wire format the real servers do (`POST /v1/chat/completions`,
`stream: true`: `data: {chat.completion.chunk}` events, a final chunk with
`finish_reason`, a usage chunk when `stream_options.include_usage`, then `data: [DONE]`),
and `GET /v1/models`.

Each model name is a `Script`: `text` is sent word by word; with `loop=True` it is sent
again and again (until `max_tokens` chunks, then `finish_reason: "length"`, or until
the client hangs up). The server records every request body (`requests`) and which
streams the client closed before their end (`hung_up`), to check that a cut loop freed
its request at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass(frozen=True)
class Script:
    text: str
    loop: bool = False
    delay_s: float = 0.0  # between chunks


@dataclass
class ScriptedEndpoint:
    scripts: dict[str, Script]
    requests: list[dict[str, Any]] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)
    url: str = ""  # base URL with /v1, once serving

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": m, "object": "model"} for m in self.scripts]}

        @api.post("/v1/chat/completions", response_model=None)
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            script = self.scripts.get(body.get("model", ""))
            if script is None:
                return JSONResponse({"error": {"message": "unknown model"}}, status_code=404)
            return StreamingResponse(self._stream(script, body), media_type="text/event-stream")

        return api

    async def _stream(self, script: Script, body: dict[str, Any]) -> AsyncIterator[bytes]:
        model = body["model"]
        limit = int(body.get("max_tokens") or 100_000)
        words = [w + " " for w in script.text.split(" ") if w]
        sent = 0
        finished = False

        def chunk(delta: dict[str, Any], reason: str | None) -> bytes:
            data = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
            }
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

        try:
            reason = "stop"
            while True:
                for word in words:
                    if sent >= limit:
                        reason = "length"
                        break
                    yield chunk({"content": word}, None)
                    sent += 1
                    await asyncio.sleep(script.delay_s)
                if not script.loop or reason == "length":
                    break
            yield chunk({}, reason)
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 10, "completion_tokens": sent, "total_tokens": sent + 10}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.hung_up.append(model)


@contextlib.asynccontextmanager
async def scripted_endpoint(scripts: dict[str, Script]) -> AsyncIterator[ScriptedEndpoint]:
    """Serve the scripts on a free loopback port, in this event loop."""
    import socket

    endpoint = ScriptedEndpoint(scripts)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(endpoint.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    endpoint.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield endpoint
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def scripted_endpoint_in_thread(scripts: dict[str, Script]) -> Iterator[ScriptedEndpoint]:
    """The same, on its own event loop in a thread: for synchronous tests (a browser, a
    CLI subprocess) that block their own loop."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        holder["stop"] = stop = asyncio.Event()
        holder["loop"] = asyncio.get_running_loop()
        async with scripted_endpoint(scripts) as ep:
            holder["ep"] = ep
            started.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the scripted endpoint did not start")
    try:
        yield holder["ep"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(30)
