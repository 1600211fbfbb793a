"""A scripted OpenAI-compatible chat engine that calls tools (standard library only).

Why it exists: no model that runs on these machines calls tools reliably (the bundled
SmolLM2-135M's chat template has no tools at all), yet every protocol's tool use must be
tested end to end, through the official clients and Claude Code. This server answers
like `llama-server --jinja` does once its template parser has found the calls:

* `POST /v1/chat/completions`, streamed (SSE) or not. With `tools` in the request and a
  last user message holding lines `call: NAME {json arguments}`, the answer is those tool
  calls (`finish_reason: "tool_calls"`; streamed as llama-server streams them: a first
  delta with `index`, `id`, `type`, `function.name` and empty `arguments`, then the
  arguments in fragments of 7 characters). After `role: "tool"` messages, the answer is
  text built from the results: `Résultats : NAME → CONTENT | ...`, each NAME taken from
  the assistant call whose id the result's `tool_call_id` names (an unknown id shows as
  `?`) — so a test sees that ids survived the round trip. Otherwise: `Réponse : TEXT`
  with the last user text. `tool_choice: "none"` means no calls; `"required"` without a
  `call:` line calls the first tool with `{}`.
* `usage` (words, not tokens) on every answer; with `stream_options.include_usage` a
  final usage chunk, as the real servers do.
* `GET /v1/models` lists the served names.
* Every request body is kept in `requests` (tests inspect what the gateway sent).

Use in-process: `with ScriptedEngine(["m"]) as engine: ... engine.url ...`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

_CALL = re.compile(r"^call: (\S+) (\{.*\})\s*$", re.MULTILINE)
FRAGMENT = 7  # characters of arguments per streamed delta


@dataclass
class Reply:
    text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)  # OpenAI tool_calls


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def reply_for(body: dict[str, Any]) -> Reply:
    """The scripted answer to a chat request (see the module docstring)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = body.get("tools") or []
    choice = body.get("tool_choice", "auto")
    results: list[dict[str, Any]] = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        results.insert(0, m)
    if results:
        names = {
            c.get("id"): c.get("function", {}).get("name")
            for m in messages
            if m.get("role") == "assistant"
            for c in m.get("tool_calls") or []
        }
        shown = [
            f"{names.get(r.get('tool_call_id')) or '?'} → {_text(r.get('content'))}"
            for r in results
        ]
        return Reply(text="Résultats : " + " | ".join(shown))
    last = next(
        (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    if tools and choice != "none":
        offered = {t.get("function", {}).get("name") for t in tools}
        wanted = [(n, a) for n, a in _CALL.findall(last) if n in offered]
        if not wanted and choice == "required":
            wanted = [(tools[0]["function"]["name"], "{}")]
        if wanted:
            calls = [
                {
                    "id": f"call_{uuid.uuid4().hex[:12]}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(json.loads(args), ensure_ascii=False),
                    },
                }
                for name, args in wanted
            ]
            return Reply(calls=calls)
    return Reply(text="Réponse : " + last.strip().splitlines()[-1] if last.strip() else "Réponse.")


def _chunk(
    model: str, cid: str, delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def stream_chunks(model: str, reply: Reply) -> list[dict[str, Any]]:
    """The answer as llama-server streams it (without the usage chunk)."""
    cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    out = [_chunk(model, cid, {"role": "assistant", "content": None})]
    for word in re.findall(r"\S+\s*", reply.text):
        out.append(_chunk(model, cid, {"content": word}))
    for i, call in enumerate(reply.calls):
        head = {"index": i, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}  # fmt: skip
        out.append(_chunk(model, cid, {"tool_calls": [head]}))
        args = call["function"]["arguments"]
        for at in range(0, len(args), FRAGMENT):
            piece = {"index": i, "function": {"arguments": args[at : at + FRAGMENT]}}
            out.append(_chunk(model, cid, {"tool_calls": [piece]}))
    out.append(_chunk(model, cid, {}, "tool_calls" if reply.calls else "stop"))
    return out


def usage_of(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt = sum(len(_text(m.get("content")).split()) for m in body.get("messages") or [])
    prompt += len(json.dumps(body.get("tools") or []).split())
    done = len(reply.text.split()) + sum(len(c["function"]["arguments"]) for c in reply.calls)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def completion(model: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.calls:
        message["tool_calls"] = reply.calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.calls else "stop",
            }
        ],
        "usage": usage_of(body, reply),
    }


class ScriptedEngine:
    """The server, in a thread, on a free loopback port."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.requests: list[dict[str, Any]] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, payload: Any) -> None:
                raw = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    data = [
                        {"id": m, "object": "model", "owned_by": "scripted"} for m in engine.models
                    ]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                engine.requests.append(body)
                model = str(body.get("model"))
                if model not in engine.models:
                    self._json(404, {"error": {"message": f"model {model} not served"}})
                    return
                reply = reply_for(body)
                if not body.get("stream"):
                    self._json(200, completion(model, body, reply))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                chunks = stream_chunks(model, reply)
                if (body.get("stream_options") or {}).get("include_usage"):
                    last = _chunk(model, chunks[0]["id"], {})
                    last["choices"] = []
                    last["usage"] = usage_of(body, reply)
                    chunks.append(last)
                for chunk in chunks:
                    data = json.dumps(chunk, ensure_ascii=False)
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedEngine:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
