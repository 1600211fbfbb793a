"""A protocol-faithful stand-in for the Ollama daemon's HTTP API (standard library only).

Why it exists: the machines that run this test suite have no Ollama daemon and cannot
download one or its models, yet `OllamaProvider` must be tested through the real `ollama`
Python client, over real HTTP, against the real wire format. This server speaks that
format as documented at docs.ollama.com/api (and as the daemon actually answers):

* `GET /` and `HEAD /` -> `Ollama is running`;
* `GET /api/version` -> `{"version": "..."}`;
* `GET /api/tags` -> `{"models": [{name, model, modified_at, size, digest,
  details{parent_model, format, family, families, parameter_size, quantization_level}}]}`;
* `POST /api/chat` -> with `"stream": true` (the default) an `application/x-ndjson` body
  sent with chunked transfer encoding, one object per line
  `{model, created_at, message{role, content}, done: false}`, then a final object with
  `done: true, done_reason, total_duration, load_duration, prompt_eval_count,
  prompt_eval_duration, eval_count, eval_duration` and an empty message; with
  `"stream": false` one JSON object holding the whole answer and the same statistics;
* unknown model -> 404 `{"error": "model \\"x\\" not found, try pulling it first"}`;
  a missing model field or malformed JSON -> 400 `{"error": ...}`; unknown path -> 404
  `404 page not found` (text), like the daemon's router.

A model named without a tag matches `name:latest`, as in Ollama. `options.num_predict`
caps the number of chunks (`done_reason: "length"`). Token counts and durations are
synthetic but consistent (eval_count is the number of content chunks sent).

Failure modes for tests: `drop_after_tokens=N` closes the socket after N chunks without
ending the chunked body (a crashed daemon); `stall_after_tokens=N` sends N chunks then
waits for the client to hang up and sets `disconnected` (to prove a cancelled request
closes its connection). `token_delay` paces chunks.

Use in-process: `with FakeOllama() as fake: ... fake.url ...`, or from a shell:
`python tests/fakes/fake_ollama.py --port 11434`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

FAKE_VERSION = "0.6.8"
DEFAULT_REPLY = "Bonjour ! Je suis un modèle de test, je ne donne pas de conseil juridique."


@dataclass(frozen=True)
class FakeModel:
    """One installed model as `/api/tags` describes it."""

    name: str  # with its tag, e.g. "llama3.2:latest"
    size: int  # bytes
    parameter_size: str
    quantization_level: str
    family: str
    digest: str = ""
    format: str = "gguf"
    modified_at: str = "2025-05-01T10:00:00.123456789+02:00"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at,
            "size": self.size,
            "digest": self.digest or hashlib.sha256(self.name.encode()).hexdigest(),
            "details": {
                "parent_model": "",
                "format": self.format,
                "family": self.family,
                "families": [self.family],
                "parameter_size": self.parameter_size,
                "quantization_level": self.quantization_level,
            },
        }


DEFAULT_MODELS: tuple[FakeModel, ...] = (
    FakeModel(
        name="llama3.2:latest",
        size=2_019_393_189,
        parameter_size="3.2B",
        quantization_level="Q4_K_M",
        family="llama",
        digest="a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    ),
    FakeModel(
        name="qwen2.5:0.5b",
        size=397_821_319,
        parameter_size="494.03M",
        quantization_level="Q4_K_M",
        family="qwen2",
        digest="a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
    ),
)


def _dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON, as Go's encoder writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _now_rfc3339() -> str:
    """Ollama's created_at: RFC 3339 in UTC with sub-second digits and a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _split_tokens(text: str) -> list[str]:
    """Word-sized pieces that concatenate back to `text`, like a tokenizer's output."""
    return re.findall(r"\s*\S+", text) or [text]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        super().__init__(address, _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up (reset while we wait for its next keep-alive request) is
        # normal life for a server, not a traceback on the test output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the Go server
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            super().log_message(format, *args)

    # --- plumbing ---------------------------------------------------------------------

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: object) -> None:
        self._send_bytes(status, _dumps(obj), "application/json; charset=utf-8")

    def _not_found(self) -> None:
        self._send_bytes(404, b"404 page not found", "text/plain")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the blank line after the last chunk
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # --- routes -----------------------------------------------------------------------

    def do_HEAD(self) -> None:
        if self.path == "/":
            self._send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")
        else:
            self._not_found()

    def do_GET(self) -> None:
        if self.path == "/":
            self._send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif self.path == "/api/version":
            self._send_json(200, {"version": FAKE_VERSION})
        elif self.path == "/api/tags":
            self._send_json(200, {"models": [m.to_json() for m in self.server.fake.models]})
        else:
            self._not_found()

    def do_POST(self) -> None:
        body = self._read_body()
        if self.path != "/api/chat":
            self._not_found()
            return
        try:
            request = json.loads(body or b"null")
        except ValueError as exc:
            self._send_json(400, {"error": f"invalid character in request body: {exc}"})
            return
        if not isinstance(request, dict):
            self._send_json(400, {"error": "invalid request body"})
            return
        fake = self.server.fake
        fake.record(request)
        name = request.get("model")
        if not isinstance(name, str) or not name:
            self._send_json(400, {"error": "model is required"})
            return
        if fake.find_model(name) is None:
            self._send_json(404, {"error": f'model "{name}" not found, try pulling it first'})
            return
        self._chat(request, name)

    def _chat(self, request: dict[str, Any], name: str) -> None:
        fake = self.server.fake
        tokens = _split_tokens(fake.reply)
        options = request.get("options") or {}
        num_predict = options.get("num_predict") if isinstance(options, dict) else None
        done_reason = "stop"
        if isinstance(num_predict, int) and 0 <= num_predict < len(tokens):
            tokens, done_reason = tokens[:num_predict], "length"
        messages = request.get("messages") or []
        prompt_eval_count = sum(
            len(str(m.get("content", "")).split()) + 4 for m in messages if isinstance(m, dict)
        )
        started = time.monotonic_ns()

        def final(content: str) -> dict[str, Any]:
            total = max(time.monotonic_ns() - started, 1)
            return {
                "model": name,
                "created_at": _now_rfc3339(),
                "message": {"role": "assistant", "content": content},
                "done_reason": done_reason,
                "done": True,
                "total_duration": total,
                "load_duration": total // 10,
                "prompt_eval_count": prompt_eval_count,
                "prompt_eval_duration": total // 5,
                "eval_count": len(tokens),
                "eval_duration": total // 2,
            }

        if request.get("stream") is False:
            self._send_json(200, final("".join(tokens)))
            return

        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for index, token in enumerate(tokens):
                if fake.drop_after_tokens is not None and index >= fake.drop_after_tokens:
                    self._drop()
                    return
                if fake.stall_after_tokens is not None and index >= fake.stall_after_tokens:
                    self._wait_for_hangup()
                    return
                if fake.token_delay:
                    time.sleep(fake.token_delay)
                line = {
                    "model": name,
                    "created_at": _now_rfc3339(),
                    "message": {"role": "assistant", "content": token},
                    "done": False,
                }
                self._write_chunk(_dumps(line) + b"\n")
            self._write_chunk(_dumps(final("")) + b"\n")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            fake.disconnected.set()
            self.close_connection = True

    def _drop(self) -> None:
        """Die like a crashed daemon: the chunked body never gets its last chunk."""
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _wait_for_hangup(self) -> None:
        """Send nothing more; report when the client closes its end of the connection."""
        self.close_connection = True
        fake = self.server.fake
        while not fake.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    data = self.connection.recv(1)
                except OSError:
                    data = b""
                if not data:
                    fake.disconnected.set()
                    return


@dataclass
class FakeOllama:
    """The fake daemon, run in a background thread: `start()`, use `.url`, `stop()`."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: let the OS choose a free port
    models: list[FakeModel] = field(default_factory=lambda: list(DEFAULT_MODELS))
    reply: str = DEFAULT_REPLY
    token_delay: float = 0.0
    drop_after_tokens: int | None = None
    stall_after_tokens: int | None = None
    verbose: bool = False
    disconnected: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    chat_requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOllama is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def find_model(self, name: str) -> FakeModel | None:
        """Resolve like Ollama: an untagged name means `name:latest`."""
        wanted = name if ":" in name else f"{name}:latest"
        return next((m for m in self.models if m.name == wanted), None)

    def record(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.chat_requests.append(request)

    def start(self) -> FakeOllama:
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns promptly
            name="fake-ollama",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (the command-line mode)."""
        self._server = _Server((self.host, self.port), self)
        print(f"fake ollama listening on {self.url}", flush=True)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Ollama daemon (HTTP API stand-in).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="text every chat answers")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds per chunk")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    fake = FakeOllama(
        host=args.host,
        port=args.port,
        reply=args.reply,
        token_delay=args.token_delay,
        verbose=args.verbose,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop it
        fake.serve_forever()


if __name__ == "__main__":
    main()
