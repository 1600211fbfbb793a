"""A protocol-faithful stand-in for the Hugging Face Hub's HTTP file API (standard library only).

Why it exists: the machines that run this test suite cannot reach huggingface.co, yet the
model download (`legal_assistant.runtime.download_worker`) must be tested through the real
`huggingface_hub` client (2.4.0), over real HTTP, against the wire format the Hub speaks.
Point `HF_ENDPOINT` at `.url` and the library talks to this server instead. It serves
in-memory repos given as `{"org/name": {"path/in/repo": b"bytes"}}` and answers the
requests `HfApi.model_info`, `HfApi.list_repo_tree`, `get_hf_file_metadata`,
`hf_hub_download` and `snapshot_download` make (read from the library's source):

* `GET /api/models/{repo}[/revision/{rev}]` -> model info JSON: `id`, `sha` (the commit),
  `siblings` (`rfilename`; with `?blobs=true` also `size`, `blobId` and, for LFS files,
  `lfs{sha256, size, pointerSize}`);
* `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=..&expand=..` -> a JSON list of
  `{type: "file", oid, size, path, lfs?{oid, size, pointerSize}}` and
  `{type: "directory", oid, size: 0, path}` entries (one page: no `Link` header);
* `HEAD|GET /{repo}/resolve/{rev}/{path}`:
  - a regular (git) file -> 200 with `ETag: "<git blob sha1>"`, `X-Repo-Commit`,
    `Content-Length`, `Accept-Ranges: bytes`, and the bytes (Range honoured: 206 +
    `Content-Range`, 416 past the end);
  - an LFS file -> 302 with `Location` on a *different origin* (the CDN, a second port of
    this server, like the Hub's redirect to its storage host), `X-Linked-Etag:
    "<sha256>"`, `X-Linked-Size`, `X-Repo-Commit`: the client stops following redirects
    at the origin change and reads the file's metadata from this response, as with the
    real Hub;
* `HEAD|GET {cdn}/lfs/{sha256}` -> the LFS bytes with `ETag`, `Content-Length`,
  `Content-Disposition`, Range support;
* `GET /api/agent-harnesses` -> an empty registry (the library's user-agent telemetry
  asks for it unless `HF_HUB_DISABLE_TELEMETRY=1`);
* errors as the Hub sends them: unknown repo -> 401 (404 when an Authorization header is
  sent) with `X-Error-Code: RepoNotFound`; unknown revision -> 404 `RevisionNotFound`;
  unknown file -> 404 `EntryNotFound` with `X-Repo-Commit`.

The commit sha is derived from the repo's content, so it changes when a file changes.
LFS files are those matching `lfs_patterns` (by default weights: *.safetensors, *.bin...).
No Xet headers are sent: the client takes its plain-HTTP download path.

Failure knobs (plain attributes, read for every chunk, so a test may change them live)
apply to every file body, by *offset in the file*, so they hit retries too:
* `throttle_bytes_per_s` paces bodies (makes progress observable);
* `stall_after_bytes=N`: bytes at offsets >= N are never sent; the connection is held
  open until the client hangs up (a stalled transfer). Sets `stalled`, then `hung_up`;
* `drop_after_bytes=N`: the connection is closed at offset N (the network went away; a
  Range retry from N is cut at once). Sets `dropped`.
Every request is logged in `requests` (method, path, headers, status) so a test can
assert that a resumed download sent a `Range` header.

Use in-process: `with FakeHub({"org/name": files}) as hub: ... hub.url ...`, or from a
shell: `python tests/fakes/fake_hub.py --port 8765` (a small demo repo) or
`--repo org/name=/path/to/dir` to serve a directory's files.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_LFS_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.pt", "*.pth", "*.npz", "*.model")
_LAST_MODIFIED = "2025-05-01T10:00:00.000Z"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API_MODEL = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_API_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_CDN = re.compile(r"^/lfs/(?P<sha256>[0-9a-f]{64})$")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file: what the Hub uses as ETag of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class HubFile:
    path: str
    data: bytes
    lfs: bool

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def blob_id(self) -> str:
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file git stores in place of an LFS file."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {self.size}\n"
        ).encode()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile]

    @property
    def commit(self) -> str:
        digest = hashlib.sha1(self.repo_id.encode())
        for path in sorted(self.files):
            digest.update(f"{path}\0{self.files[path].blob_id}\n".encode())
        return digest.hexdigest()

    def directories(self) -> list[str]:
        dirs: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return sorted(dirs)


@dataclass
class RequestRecord:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    server: str  # "hub" or "cdn"
    status: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeHub, role: str) -> None:
        super().__init__(address, _Handler)
        self.fake = fake
        self.role = role

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-body is normal life for a download server.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub
    server: _Server
    _record: RequestRecord | None = None

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            super().log_message(format, *args)

    def send_response(self, code: int, message: str | None = None) -> None:
        if self._record is not None:
            self._record.status = code
        super().send_response(code, message)

    # --- plumbing ---------------------------------------------------------------------

    def _begin(self) -> tuple[str, dict[str, list[str]]]:
        self._record = RequestRecord(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            server=self.server.role,
        )
        self.server.fake.log(self._record)
        split = urlsplit(self.path)
        return split.path, parse_qs(split.query)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        content_type = {"Content-Type": "application/json; charset=utf-8"}
        self._send(status, json.dumps(obj).encode(), {**content_type, **(headers or {})})

    def _error(
        self, status: int, code: str, message: str, extra: dict[str, str] | None = None
    ) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
        self._json(status, {"error": message}, headers)

    def _repo(self, repo_id: str) -> HubRepo | None:
        repo = self.server.fake.repo(repo_id)
        if repo is None:
            # The Hub answers 401 to an anonymous client for a repo it cannot show (missing,
            # private or gated alike), 404 to an authenticated one.
            authenticated = self._record is not None and "authorization" in self._record.headers
            status = 404 if authenticated else 401
            self._error(status, "RepoNotFound", "Repository not found")
        return repo

    def _check_revision(self, repo: HubRepo, rev: str) -> bool:
        if unquote(rev) in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(rev)}")
        return False

    # --- routes -----------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path, query = self._begin()
        if self.server.role == "cdn":
            match = _CDN.match(path)
            found = self.server.fake.lfs_object(match["sha256"]) if match else None
            if found is None:
                self._send(404, b"NoSuchKey", {"Content-Type": "text/plain"})
                return
            self._file(
                found,
                {
                    "ETag": f'"{found.sha256}"',
                    "Content-Type": "application/octet-stream",
                    "Content-Disposition": (
                        f"inline; filename*=UTF-8''{quote(found.path.split('/')[-1])}; "
                        f'filename="{found.path.split("/")[-1]}"'
                    ),
                },
            )
            return
        if path == "/api/agent-harnesses":  # huggingface_hub's agent detection (telemetry)
            self._json(200, {"standardEnvVars": [], "harnesses": {}})
        elif match := _RESOLVE.match(path):
            self._resolve(match["repo"], match["rev"], unquote(match["path"]))
        elif match := _API_TREE.match(path):
            self._tree(match["repo"], match["rev"], unquote(match["path"] or ""), query)
        elif match := _API_MODEL.match(path):
            self._model_info(match["repo"], match["rev"] or "main", query)
        else:
            self._send(404, b"Not Found", {"Content-Type": "text/plain"})

    def _model_info(self, repo_id: str, rev: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._check_revision(repo, rev):
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings: list[dict[str, Any]] = []
        for path in sorted(repo.files):
            f = repo.files[path]
            entry: dict[str, Any] = {"rfilename": path}
            if blobs:
                entry.update(size=f.size, blobId=f.blob_id)
                if f.lfs:
                    pointer_size = len(f.pointer)
                    entry["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": pointer_size}
            siblings.append(entry)
        org = repo_id.split("/")[0]
        self._json(
            200,
            {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": org,
                "sha": repo.commit,
                "lastModified": _LAST_MODIFIED,
                "createdAt": _LAST_MODIFIED,
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": ["mlx", "safetensors"],
                "library_name": "mlx",
                "siblings": siblings,
            },
        )

    def _tree(self, repo_id: str, rev: str, base: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._check_revision(repo, rev):
            return
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{base.strip('/')}/" if base.strip("/") else ""

        def wanted(path: str) -> bool:
            if not path.startswith(prefix) or path == prefix.rstrip("/"):
                return False
            return recursive or "/" not in path[len(prefix) :]

        entries: list[dict[str, Any]] = [
            {
                "type": "directory",
                "oid": hashlib.sha1(d.encode()).hexdigest(),
                "size": 0,
                "path": d,
            }
            for d in repo.directories()
            if wanted(d)
        ]
        for path in sorted(repo.files):
            if not wanted(path):
                continue
            f = repo.files[path]
            item: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": path}
            if f.lfs:
                item["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
            entries.append(item)
        if prefix and not entries:
            self._error(404, "EntryNotFound", f'{base} does not exist on "{rev}"')
            return
        self._json(200, entries)

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._check_revision(repo, rev):
            return
        commit = {"X-Repo-Commit": repo.commit}
        f = repo.files.get(path)
        if f is None:
            self._error(404, "EntryNotFound", "Entry not found", commit)
            return
        if f.lfs:
            location = f"{self.server.fake.cdn_url}/lfs/{f.sha256}"
            body = f"Found. Redirecting to {location}".encode()
            self._send(
                302,
                body,
                {
                    **commit,
                    "Location": location,
                    "X-Linked-Etag": f'"{f.sha256}"',
                    "X-Linked-Size": str(f.size),
                    "ETag": f'W/"{hashlib.sha1(body).hexdigest()[:32]}"',
                    "Content-Type": "text/plain; charset=utf-8",
                    "Vary": "Origin, Accept",
                },
            )
            return
        text = {"Content-Type": "text/plain; charset=utf-8"}
        self._file(f, {**commit, "ETag": f'"{f.blob_id}"', **text})

    # --- file bodies, Range and the failure knobs ----------------------------------------

    def _file(self, f: HubFile, headers: dict[str, str]) -> None:
        size = f.size
        start, end = 0, size - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted is not None:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            if match and (match[1] or match[2]):
                if match[1]:
                    start = int(match[1])
                    end = min(int(match[2]), size - 1) if match[2] else size - 1
                else:  # suffix range: the last N bytes
                    start = max(size - int(match[2]), 0)
                if start >= size or start > end:
                    self._send(416, b"", {"Content-Range": f"bytes */{size}", **headers})
                    return
                status = 206
                headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            self._body(f.data, start, end + 1)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _body(self, data: bytes, start: int, stop: int) -> None:
        fake = self.server.fake
        offset = start
        began = time.monotonic()
        while offset < stop:
            if fake.stall_after_bytes is not None and offset >= fake.stall_after_bytes:
                self._hold_until_hangup()
                return
            if fake.drop_after_bytes is not None and offset >= fake.drop_after_bytes:
                self._drop()
                return
            rate = fake.throttle_bytes_per_s
            chunk = 64 * 1024 if not rate else max(1024, min(64 * 1024, int(rate / 20)))
            limit = stop
            for knob in (fake.stall_after_bytes, fake.drop_after_bytes):
                if knob is not None and offset < knob:
                    limit = min(limit, knob)
            piece = data[offset : min(offset + chunk, limit)]
            self.wfile.write(piece)
            self.wfile.flush()
            offset += len(piece)
            if rate:
                due = began + (offset - start) / rate
                delay = due - time.monotonic()
                if delay > 0 and fake.stopping.wait(delay):
                    self.close_connection = True
                    return

    def _drop(self) -> None:
        """Die like a lost network: the body stops short and the socket closes."""
        self.server.fake.dropped.set()
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hold_until_hangup(self) -> None:
        """Send nothing more, keep the connection open; report when the client leaves."""
        fake = self.server.fake
        fake.stalled.set()
        self.close_connection = True
        while not fake.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    data = self.connection.recv(1)
                except OSError:
                    data = b""
                if not data:
                    fake.hung_up.set()
                    return


@dataclass
class FakeHub:
    """The fake Hub (API + resolve) and its CDN, run in background threads."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0  # 0: let the OS choose a free port
    cdn_port: int = 0
    lfs_patterns: tuple[str, ...] = DEFAULT_LFS_PATTERNS
    throttle_bytes_per_s: float | None = None
    stall_after_bytes: int | None = None
    drop_after_bytes: int | None = None
    verbose: bool = False
    requests: list[RequestRecord] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)
    dropped: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    _repos: dict[str, HubRepo] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[_Server] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for repo_id, files in self.repos.items():
            self.add_repo(repo_id, files)

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> HubRepo:
        repo = HubRepo(
            repo_id,
            {
                path: HubFile(path, data, any(fnmatch.fnmatch(path, p) for p in self.lfs_patterns))
                for path, data in files.items()
            },
        )
        with self._lock:
            self._repos[repo_id] = repo
        return repo

    def repo(self, repo_id: str) -> HubRepo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def lfs_object(self, sha256: str) -> HubFile | None:
        with self._lock:
            for repo in self._repos.values():
                for f in repo.files.values():
                    if f.lfs and f.sha256 == sha256:
                        return f
        return None

    def log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def requests_for(self, path_suffix: str, method: str = "GET") -> list[RequestRecord]:
        """Logged requests whose path (query excluded) ends with `path_suffix`."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method and urlsplit(r.path).path.endswith(path_suffix)
            ]

    @property
    def url(self) -> str:
        return self._url(0)

    @property
    def cdn_url(self) -> str:
        return self._url(1)

    def _url(self, index: int) -> str:
        if len(self._servers) <= index:
            raise RuntimeError("FakeHub is not started")
        host, port = self._servers[index].server_address[:2]
        return f"http://{host!s}:{port}"

    def _bind(self) -> None:
        self.stopping.clear()
        self._servers = [
            _Server((self.host, self.port), self, "hub"),
            _Server((self.host, self.cdn_port), self, "cdn"),
        ]

    def start(self) -> FakeHub:
        self._bind()
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},  # so stop() returns promptly
                name=f"fake-hub-{server.role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (the command-line mode); the CDN in a side thread."""
        self._bind()
        hub, cdn = self._servers
        cdn_thread = threading.Thread(target=cdn.serve_forever, name="fake-hub-cdn", daemon=True)
        cdn_thread.start()
        print(f"fake Hugging Face Hub on {self.url} (CDN {self.cdn_url})", flush=True)
        for repo_id in sorted(self._repos):
            print(f"  serving {repo_id} @ {self._repos[repo_id].commit}", flush=True)
        try:
            hub.serve_forever()
        finally:
            self.stopping.set()
            cdn.shutdown()
            for server in self._servers:
                server.server_close()

    def stop(self) -> None:
        self.stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers = []
        self._threads = []

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def demo_repo(weights_bytes: int = 2 * 1024 * 1024, seed: int = 7) -> dict[str, bytes]:
    """A small MLX-shaped repo: config, tokenizer, random weights, and files a download with
    MLX patterns must skip (README.md, a PyTorch .bin)."""
    import random

    rng = random.Random(seed)
    return {
        "config.json": json.dumps({"model_type": "llama", "hidden_size": 64}).encode(),
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE"}}).encode(),
        "model.safetensors": rng.randbytes(weights_bytes),
        "README.md": b"# tiny test model\n",
        "pytorch_model.bin": rng.randbytes(64 * 1024),
    }


def _read_dir(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Hugging Face Hub (file API stand-in).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cdn-port", type=int, default=0)
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="ORG/NAME=DIR",
        help="serve the files of DIR as repo ORG/NAME (default: a demo repo test-org/tiny-mlx)",
    )
    parser.add_argument("--throttle", type=float, default=None, help="bytes per second")
    parser.add_argument("--stall-after", type=int, default=None, help="stall at this offset")
    parser.add_argument("--drop-after", type=int, default=None, help="drop at this offset")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    repos: dict[str, dict[str, bytes]] = {}
    for spec in args.repo:
        repo_id, _, directory = spec.partition("=")
        repos[repo_id] = _read_dir(Path(os.path.expanduser(directory)))
    if not repos:
        repos["test-org/tiny-mlx"] = demo_repo()
    fake = FakeHub(
        repos=repos,
        host=args.host,
        port=args.port,
        cdn_port=args.cdn_port,
        throttle_bytes_per_s=args.throttle,
        stall_after_bytes=args.stall_after,
        drop_after_bytes=args.drop_after,
        verbose=args.verbose,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop it
        fake.serve_forever()


if __name__ == "__main__":
    main()
