"""Fake ``mlx_lm.server``: a protocol-faithful, stdlib-only stand-in for lifecycle tests.

It mimics what the engine supervisor sees from Apple's ``mlx_lm.server`` (an
OpenAI-compatible HTTP server), without loading any model, so it starts in a few
tens of milliseconds:

* logs on stderr, in the ``logging`` format of the real server, ending the start-up
  with ``<asctime> - INFO - Starting httpd at {host} on port {port}...``;
* HTTP/1.0 like ``BaseHTTPRequestHandler`` (one request per connection; streams end
  when the connection closes);
* ``GET /health`` -> 200 ``{"status": "ok"}`` (even while the model is loading),
  503 ``{"status": "unavailable"}`` once the generation thread has died;
* ``GET /v1/models`` -> ``{"object": "list", "data": [{"id": <--model>, ...}]}``;
* ``POST /v1/chat/completions``, ``/chat/completions`` and ``/v1/completions``,
  streamed (SSE, ``data: {...}\\n\\n`` ... ``data: [DONE]\\n\\n``) or not, with the
  same JSON shapes as the real server (the echoed ``"model"`` is the request's
  ``model`` field, or ``"default_model"`` when absent, like the real server);
* a request naming another model than the served one gets 404
  ``{"error": "model not served: X"}`` (the real server would try to download it);
* requests arriving while the model is "loading" block until the load ends;
* SIGTERM keeps its default disposition (exit status -15) unless told otherwise;
* a chat request with ``tools`` is answered by tests/fakes/scripted_engine.py's script
  (tool calls named in the prompt, then text built from the tool results);
* a busy port prints ``OSError: [Errno 98] Address already in use`` and then hangs,
  because the real server's non-daemon generation thread keeps the process alive.

Behaviour knobs (lowest to highest priority): built-in defaults, environment
variables ``FAKE_ENGINE_<UPPER_NAME>``, command-line flags ``--<name>`` (dashes or
underscores), then the JSON object in ``<--model dir>/fake_engine.json`` (when
``--model`` is a directory), which lets two "models" behave differently:

==================== ======= ======= ==================================================
name                 type    default meaning
==================== ======= ======= ==================================================
start_delay          float   0       seconds to sleep before binding the port
load_delay           float   0       seconds of "model loading" after the port is up
crash_at_start       int?    null    after start_delay, print a traceback, exit(code)
hang                 bool    false   never bind, never print, sleep forever
ignore_sigterm       bool    false   ignore SIGTERM (only SIGKILL ends the process)
token_rate           float   200     tokens per second (0: as fast as possible)
tokens               int     16      tokens per answer (capped by max_tokens)
fatal_line           str?    null    stderr line printed ~20 ms after the httpd line;
                                     then completions 404, /health 503
crash_after_tokens   int?    null    os._exit(1) after emitting N tokens of an answer
spawn_log            path?   null    append "{pid}\\n" to this file at start
start_cpu            float   0       fraction of a core burnt, silently, during start_delay
log_prompts          bool    false   log each request's prompt text (as verbose engines do)
hang_after_tokens    int?    null    after N tokens of an answer, send nothing more (wedged)
start_gate           path?   null    before start_delay, wait until this file exists
                                     (a test opens the gate once its callers joined)
varied               bool    false   each word tagged with its round ("Selon0 … Selon1 …"):
                                     no repeated span, so chat's loop watcher lets it run
==================== ======= ======= ==================================================

Everything not listed above (``--model``, ``--host``, ``--port`` aside) is accepted
and ignored, so the supervisor can pass the real server's flags unchanged.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONFIG_FILE_NAME = "fake_engine.json"
ENV_PREFIX = "FAKE_ENGINE_"
DEFAULT_MODEL = "default_model"
SYSTEM_FINGERPRINT = "fake-engine-0.0.0"
FATAL_LINE_DELAY_S = 0.02

# The generated answer cycles over these words, one word per token.
WORDS: tuple[str, ...] = (
    "Selon",
    "l'article",
    "1103",
    "du",
    "Code",
    "civil,",
    "les",
    "contrats",
    "légalement",
    "formés",
    "tiennent",
    "lieu",
    "de",
    "loi",
    "à",
    "ceux",
    "qui",
    "les",
    "ont",
    "faits.",
)


def token_text(index: int) -> str:
    """The text of the ``index``-th generated token (0-based)."""
    word = WORDS[index % len(WORDS)]
    return word if index == 0 else " " + word


def varied_token_text(index: int) -> str:
    """Like `token_text`, each word tagged with its round ("Selon0 ... Selon1 ..."): a long
    answer that never repeats a span, so the chat's loop watcher lets it run."""
    word = f"{WORDS[index % len(WORDS)]}{index // len(WORDS)}"
    return word if index == 0 else " " + word


def expected_text(n_tokens: int) -> str:
    """The full answer made of ``n_tokens`` tokens."""
    return "".join(token_text(i) for i in range(n_tokens))


@dataclass
class FakeConfig:
    """Behaviour knobs; see the module docstring."""

    start_delay: float = 0.0
    load_delay: float = 0.0
    crash_at_start: int | None = None
    hang: bool = False
    ignore_sigterm: bool = False
    token_rate: float = 200.0
    tokens: int = 16
    fatal_line: str | None = None
    crash_after_tokens: int | None = None
    spawn_log: str | None = None
    start_gate: str | None = None
    start_cpu: float = 0.0
    log_prompts: bool = False
    hang_after_tokens: int | None = None
    varied: bool = False


_NULLABLE = {
    "crash_at_start",
    "fatal_line",
    "crash_after_tokens",
    "spawn_log",
    "start_gate",
    "hang_after_tokens",
}
_KINDS: dict[str, type] = {
    "start_delay": float,
    "load_delay": float,
    "crash_at_start": int,
    "hang": bool,
    "ignore_sigterm": bool,
    "token_rate": float,
    "tokens": int,
    "fatal_line": str,
    "crash_after_tokens": int,
    "spawn_log": str,
    "start_gate": str,
    "start_cpu": float,
    "log_prompts": bool,
    "hang_after_tokens": int,
    "varied": bool,
}


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"", "0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _coerce(name: str, value: Any) -> Any:
    """Convert a JSON value or an environment string to the knob's type."""
    kind = _KINDS[name]
    if value is None:
        if name in _NULLABLE:
            return None
        raise ValueError(f"{name} cannot be null")
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if name in _NULLABLE and text.lower() in {"", "null", "none"}:
            return None
        if kind is bool:
            return _parse_bool(text)
        return kind(text)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fake mlx_lm.server for tests.")
    parser.add_argument("--model", type=str, default=None)
    parser.add_argument("--host", type=str, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    for f in fields(FakeConfig):
        flags = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            flags.append(f"--{f.name}")
        kind = _KINDS[f.name]
        if kind is bool:
            parser.add_argument(
                *flags,
                dest=f.name,
                nargs="?",
                const="true",
                default=None,
                help=f"{f.name} (optional true/false value)",
            )
        else:
            parser.add_argument(*flags, dest=f.name, type=str, default=None, help=f.name)
    return parser


def resolve_config(args: argparse.Namespace, environ: dict[str, str]) -> FakeConfig:
    """Merge defaults < environment < command line < ``<model dir>/fake_engine.json``."""
    values: dict[str, Any] = {}
    for f in fields(FakeConfig):
        env_value = environ.get(ENV_PREFIX + f.name.upper())
        if env_value is not None:
            values[f.name] = _coerce(f.name, env_value)
        cli_value = getattr(args, f.name)
        if cli_value is not None:
            values[f.name] = _coerce(f.name, cli_value)
    if args.model and os.path.isdir(args.model):
        path = os.path.join(args.model, CONFIG_FILE_NAME)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a JSON object")
            known = {f.name for f in fields(FakeConfig)}
            for key, value in data.items():
                if key not in known:
                    raise ValueError(f"{path}: unknown knob {key!r}")
                values[key] = _coerce(key, value)
    return FakeConfig(**values)


def log(level: str, message: str) -> None:
    """Write one line like ``logging.basicConfig(format="%(asctime)s - ...")``."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    millis = int((now % 1) * 1000)
    sys.stderr.write(f"{stamp},{millis:03d} - {level} - {message}\n")
    sys.stderr.flush()


def sleep_forever() -> None:
    while True:
        time.sleep(3600)


def _count_words(value: Any) -> int:
    """Prompt "tokens": whitespace-separated words of the prompt or message contents."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(item) for item in value)
    if isinstance(value, dict):  # a chat message or a content part
        return _count_words(value.get("content")) + _count_words(value.get("text"))
    return 0


class EngineState:
    """What the (fake) generation thread knows: loaded, dead, served model."""

    def __init__(self, config: FakeConfig, model: str | None) -> None:
        self.config = config
        self.model = model
        self.created = int(time.time())
        self.loaded = threading.Event()
        self.dead = False

    @property
    def served_model(self) -> str:
        return self.model if self.model is not None else DEFAULT_MODEL

    def start_loading(self) -> None:
        threading.Thread(target=self._load, name="fake-load", daemon=True).start()

    def _load(self) -> None:
        if self.config.fatal_line is not None:
            time.sleep(FATAL_LINE_DELAY_S)
            sys.stderr.write(self.config.fatal_line.rstrip("\n") + "\n")
            sys.stderr.flush()
            self.dead = True
        else:
            time.sleep(self.config.load_delay)
        self.loaded.set()


class FakeHandler(BaseHTTPRequestHandler):
    """Same routes, status codes and JSON shapes as ``mlx_lm.server.APIHandler``."""

    server_version = "BaseHTTP/0.6"
    state: EngineState  # set on the subclass made by ``serve``

    # -- helpers ---------------------------------------------------------------

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_not_found(self) -> None:
        self.send_response(404)
        self.send_header("Content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"Not Found")

    # -- GET ---------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path.startswith("/v1/models"):
            model = {
                "id": self.state.served_model,
                "object": "model",
                "created": self.state.created,
            }
            self._send_json(200, {"object": "list", "data": [model]})
        elif self.path == "/health":
            if self.state.dead:
                self._send_json(503, {"status": "unavailable"})
            else:
                self._send_json(200, {"status": "ok"})
        else:
            self._send_not_found()

    # -- POST --------------------------------------------------------------------

    def do_POST(self) -> None:
        routes = {
            "/v1/completions": "text",
            "/v1/chat/completions": "chat",
            "/chat/completions": "chat",
        }
        kind = routes.get(self.path)
        if kind is None:
            self._send_not_found()
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self._send_json(411, {"error": "Content-Length header is required"})
            return
        try:
            raw = self.rfile.read(int(length_header))
            body = json.loads(raw.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            self._send_json(400, {"error": f"Invalid JSON in request body: {exc}"})
            return
        if not isinstance(body, dict):
            self._send_json(400, {"error": "Request should be a JSON dictionary"})
            return
        if kind == "chat" and "messages" not in body:
            self._send_json(400, {"error": "Request did not contain messages"})
            return
        if kind == "text" and "prompt" not in body:
            self._send_json(400, {"error": "Request did not contain a prompt"})
            return
        for field_name in ("max_tokens", "max_completion_tokens"):
            value = body.get(field_name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                self._send_json(400, {"error": f"{field_name} must be of type int"})
                return

        state = self.state
        # Like the real server: fail fast if the generation thread is already dead,
        # otherwise queue behind the model load.
        if state.dead:
            self._send_json(404, {"error": "generation thread died"})
            return
        state.loaded.wait()
        if state.dead:
            self._send_json(404, {"error": "generation thread died"})
            return
        requested = body.get("model", DEFAULT_MODEL)
        if requested not in (DEFAULT_MODEL, state.served_model):
            self._send_json(404, {"error": f"model not served: {requested}"})
            return

        if kind == "chat" and body.get("tools"):
            self._scripted(body, requested)
            return
        self._generate(kind, body, requested)

    def _scripted(self, body: dict[str, Any], requested: str) -> None:
        """A chat with tools: the scripted engine's answer (scripted_engine.py)."""
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import scripted_engine

        reply = scripted_engine.reply_for(body)
        if not body.get("stream"):
            self._send_json(200, scripted_engine.completion(requested, body, reply))
            return
        self.send_response(200)
        self.send_header("Content-type", "text/event-stream")
        self.end_headers()
        for chunk in scripted_engine.stream_chunks(requested, reply):
            self._sse(chunk)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = scripted_engine.usage_of(body, reply)
            self._sse({"id": "usage", "object": "chat.completion.chunk", "model": requested,
                       "created": int(time.time()), "choices": [], "usage": usage})  # fmt: skip
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _generate(self, kind: str, body: dict[str, Any], requested: str) -> None:
        config = self.state.config
        stream = bool(body.get("stream", False))
        stream_options = body.get("stream_options") or {}
        include_usage = bool(stream_options.get("include_usage", False))
        raw_max = body.get("max_completion_tokens")
        if raw_max is None:
            raw_max = body.get("max_tokens")
        max_tokens = None if raw_max is None else int(raw_max)
        if max_tokens is not None and max_tokens <= config.tokens:
            n_tokens, finish_reason = max(max_tokens, 0), "length"
        else:
            n_tokens, finish_reason = config.tokens, "stop"
        prompt = body.get("messages") if kind == "chat" else body.get("prompt")
        prompt_tokens = max(_count_words(prompt), 1)
        if config.log_prompts:
            log("INFO", f"prompt: {json.dumps(prompt, ensure_ascii=False)}")
        delay = 1.0 / config.token_rate if config.token_rate > 0 else 0.0

        if kind == "chat":
            request_id = f"chatcmpl-{uuid.uuid4()}"
            object_type = "chat.completion.chunk" if stream else "chat.completion"
        else:
            request_id = f"cmpl-{uuid.uuid4()}"
            object_type = "text_completion"
        created = int(time.time())

        def packet(text: str, reason: str | None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "finish_reason": reason}
            if kind == "chat":
                key = "delta" if stream else "message"
                message: dict[str, Any] = {"role": "assistant"}
                if not stream:
                    message["content"] = text if text else None
                elif text:
                    message["content"] = text
                choice[key] = message
            else:
                choice["text"] = text
            return {
                "id": request_id,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "object": object_type,
                "model": requested,
                "created": created,
                "choices": [choice],
            }

        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": n_tokens,
            "total_tokens": prompt_tokens + n_tokens,
        }

        try:
            if stream:
                self.send_response(200)
                self.send_header("Content-type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.flush()
            text = ""
            for index in range(n_tokens):
                if delay:
                    time.sleep(delay)
                piece = varied_token_text(index) if config.varied else token_text(index)
                text += piece
                if stream:
                    self._sse(packet(piece, None))
                self._maybe_crash(index + 1)
                if config.hang_after_tokens is not None and index + 1 >= config.hang_after_tokens:
                    log("INFO", "hang_after_tokens: sending nothing more")
                    sleep_forever()
            if stream:
                self._sse(packet("", finish_reason))
                if include_usage:
                    self._sse(
                        {
                            "id": request_id,
                            "system_fingerprint": SYSTEM_FINGERPRINT,
                            "object": "chat.completion",
                            "model": requested,
                            "created": created,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True
            else:
                payload = packet(text, finish_reason)
                payload["usage"] = usage
                self._send_json(200, payload)
        except (BrokenPipeError, ConnectionResetError):
            log("INFO", "Client disconnected, generation stopped.")
            self.close_connection = True

    def _sse(self, payload: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        self.wfile.flush()

    def _maybe_crash(self, emitted: int) -> None:
        limit = self.state.config.crash_after_tokens
        if limit is not None and emitted >= limit:
            sys.stderr.write(f"fake_engine: crash_after_tokens={limit}, dying now\n")
            sys.stderr.flush()
            os._exit(1)


def _bind(host: str, port: int, handler: type[FakeHandler]) -> ThreadingHTTPServer:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    bind_host, bind_port = str(address[0]), int(address[1])
    return Server((bind_host, bind_port), handler)


def burn(seconds: float, fraction: float) -> None:
    """Sleep `seconds`, burning `fraction` of a core meanwhile (a silent, slow load)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if fraction > 0:
            busy_until = time.monotonic() + 0.01 * fraction
            while time.monotonic() < busy_until:
                pass
        time.sleep(0.01 * (1 - min(fraction, 1.0)))


def serve(config: FakeConfig, model: str | None, host: str, port: int) -> None:
    state = EngineState(config, model)
    handler = type("BoundFakeHandler", (FakeHandler,), {"state": state})
    try:
        httpd = _bind(host, port, handler)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # The real server's generation thread is not a daemon: the main thread dies
        # with this traceback but the process stays alive, serving nothing.
        sys.stderr.write(
            "Traceback (most recent call last):\n"
            '  File "mlx_lm/server.py", line 1885, in _run_http_server\n'
            "    httpd = server_class(\n"
            f"OSError: [Errno {exc.errno}] {exc.strerror}\n"
        )
        sys.stderr.flush()
        sleep_forever()
        return
    sys.stderr.write(
        "mlx_lm/server.py:1894: UserWarning: mlx_lm.server is not recommended for "
        "production as it only implements basic security checks.\n"
        "  warnings.warn(\n"
    )
    log("INFO", f"Starting httpd at {host} on port {port}...")
    state.start_loading()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        httpd.shutdown()


def main(argv: list[str] | None = None) -> None:
    args, ignored = build_parser().parse_known_args(argv)
    if args.model is None and ignored and not ignored[0].startswith("-"):
        # `vllm serve MODEL --host ...` names its model positionally: the fake stands in
        # for that command line too.
        args.model = ignored[0]
    config = resolve_config(args, dict(os.environ))

    if config.spawn_log:
        fd = os.open(config.spawn_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
    if config.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if config.hang:
        sleep_forever()
    while config.start_gate and not os.path.exists(config.start_gate):
        # Busy enough (a few % of a core) that the supervisor's stall watch sees a loading
        # engine, not a hung one.
        deadline = time.monotonic() + 0.02
        while time.monotonic() < deadline:
            pass
        time.sleep(0.01)
    if config.start_delay > 0:
        burn(config.start_delay, config.start_cpu)
    if config.crash_at_start is not None:
        sys.stderr.write(
            "Traceback (most recent call last):\n"
            '  File "mlx_lm/utils.py", line 1, in load\n'
            f"RuntimeError: fake_engine: crash_at_start (exit code {config.crash_at_start})\n"
        )
        sys.stderr.flush()
        sys.exit(config.crash_at_start)
    serve(config, args.model, args.host, args.port)


if __name__ == "__main__":
    main()
