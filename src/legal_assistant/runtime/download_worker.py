"""Download one model snapshot from the Hugging Face Hub, reporting progress as JSON lines.

Usage: python -m legal_assistant.runtime.download_worker --repo ORG/REPO --cache-dir DIR
       [--revision main]

Run as a child of the backend by `legal_assistant.runtime.downloads`, never imported by it.
Why a separate process: huggingface_hub's calls block, some have no timeout, and a stalled
or cancelled download must stop at once — a process group can be killed at any byte, a
thread cannot. Everything it has to say goes to stdout, one JSON object per line:

  {"event": "start"}                                     (imports done, about to ask the Hub)
  {"event": "plan", "total_bytes": N, "files": k, "done_bytes": d, "commit": sha}
  {"event": "progress", "done_bytes": n, "t": seconds}      (at most ~10 per second)
  {"event": "verifying", "file": f, "done_bytes": n, "total_bytes": m}   (hashing a partial)
  {"event": "linking"}                                    (all bytes here, building the snapshot)
  {"event": "done", "path": dir, "commit": sha, "files": [{"path": f, "size": n}, ...]}
  {"event": "error", "kind": K, "message": "..."}        (then exit code 2)

with K one of not_found (repo/revision unknown, 401/404), offline (HF_HUB_OFFLINE),
unreachable (the Hub could not be reached before the file list was known), interrupted
(the connection died mid-download and retries made no progress), disk_full, other.
Nothing is printed without real work behind it (no heartbeat): the parent's stall deadline
relies on that. `t` is this process's own clock, so the parent computes rates from when
bytes arrived rather than when it read the pipe.

Why not a plain `snapshot_download` call: in huggingface_hub 2.4.0 it downloads each file
to a process-unique `<etag>.<uuid>.incomplete` opened with "wb" and deletes it on failure —
a killed or disconnected download restarts from byte 0 next time — and its progress bars
move once per 10 MB chunk (DOWNLOAD_CHUNK_SIZE). So the worker fetches the blobs itself,
resumably: `blobs/<etag>.incomplete` (the cache's classic name, which older
huggingface_hub versions resume too), an HTTP Range request from its size, under the same
`.locks/<repo>/<etag>.lock` the library takes, the content hash checked against the Hub's
(sha256 for LFS files, git blob sha1 for regular ones) before the file is renamed to
`blobs/<etag>`. Then `snapshot_download(revision=<commit>)` finds every blob present and
only builds the snapshot (symlinks, tree cache) exactly as the library lays it out.
`refs/<revision>` is written last, after every file was checked: until then no reader
resolving "main" (mlx_lm, `try_to_load_from_cache`, `complete_snapshot`) can see a
partial snapshot.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import (
    HfApi,
    constants,
    get_hf_file_metadata,
    get_session,
    hf_hub_url,
    hf_raise_for_status,
    snapshot_download,
)
from huggingface_hub.file_download import repo_folder_name

# Public names (re-exported by huggingface_hub.utils), imported from where they are defined
# because the package's lazy re-exports are invisible to mypy.
from huggingface_hub.utils._fixes import WeakFileLock
from huggingface_hub.utils._headers import build_hf_headers
from huggingface_hub.utils._paths import filter_repo_objects
from huggingface_hub.utils.tqdm import disable_progress_bars

from legal_assistant.runtime.download_wire import (
    RETRY_STATUSES,
    Digest,
    Hasher,
    Progress,
    WorkerError,
    classify,
    emit,
    log,
)

# What mlx_lm needs to load a model: weights, configs, tokenizer, chat template, custom code.
MLX_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.py",
    "tokenizer.model",
    "*.tiktoken",
    "*.txt",
    "*.jinja",
]

EXIT_ERROR = 2
_VERIFY_INTERVAL_S = 0.5
# A broken transfer is retried at once while it makes progress; attempts that bring no new
# byte back off and give up after this many (the parent's stall deadline is the other bound).
_RETRY_DELAYS_S = (0.5, 1.0, 2.0)
_HASH_BLOCK = 8 * 1024 * 1024


class _Transient(Exception):
    """A transfer that ended badly but may succeed when retried (5xx, 429, short body)."""


@dataclass(frozen=True, slots=True)
class _Planned:
    path: str
    size: int | None
    sha256: str | None  # the LFS oid, for LFS files
    blob_id: str | None  # the git oid (of the pointer, for LFS files)


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Worker:
    def __init__(self, repo: str, cache_dir: Path, revision: str) -> None:
        self.repo = repo
        self.cache_dir = cache_dir
        self.revision = revision
        self.storage = cache_dir / repo_folder_name(repo_id=repo, repo_type="model")
        self.planned = False  # past this point a network failure is an interruption
        self.meta_timeout = float(constants.HF_HUB_ETAG_TIMEOUT)
        self.transfer_timeout = httpx2.Timeout(
            float(constants.HF_HUB_DOWNLOAD_TIMEOUT), connect=self.meta_timeout
        )
        self.progress = Progress(0)

    def run(self) -> Path:
        info = HfApi().model_info(
            self.repo, revision=self.revision, files_metadata=True, timeout=self.meta_timeout
        )
        commit = info.sha
        if commit is None:
            raise WorkerError("other", f"the Hub sent no commit for {self.repo}@{self.revision}")
        siblings = info.siblings or []
        names = [s.rfilename for s in siblings]
        wanted = set(filter_repo_objects(names, allow_patterns=MLX_PATTERNS))
        files = [
            _Planned(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None, s.blob_id)
            for s in siblings
            if s.rfilename in wanted
        ]
        if not any(f.path == "config.json" for f in files):
            raise WorkerError("not_found", f"{self.repo} has no config.json: not an MLX model")
        self.planned = True
        self.progress = Progress(sum(f.size or 0 for f in files))
        for f in files:  # what earlier attempts left: finished blobs and partial ones
            etag = f.sha256 or f.blob_id
            if etag:
                blob = self.storage / "blobs" / etag
                part = blob.with_name(f"{etag}.incomplete")
                on_disk = blob if blob.is_file() else part if part.is_file() else None
                if on_disk is not None:
                    self.progress.per_file[f.path] = on_disk.stat().st_size
        self.progress.done = sum(self.progress.per_file.values())
        emit(
            "plan",
            total_bytes=self.progress.total,
            files=len(files),
            done_bytes=self.progress.done,
            commit=commit,
        )

        sizes = {f.path: self._fetch(f, commit) for f in files}

        emit("linking")
        snapshot = Path(
            snapshot_download(
                self.repo,
                cache_dir=self.cache_dir,
                revision=commit,
                allow_patterns=MLX_PATTERNS,
                etag_timeout=self.meta_timeout,
            )
        )
        missing = [
            path
            for path, size in sizes.items()
            if not (snapshot / path).is_file() or (snapshot / path).stat().st_size != size
        ]
        if missing:
            raise WorkerError("other", f"snapshot incomplete after download: {missing[:5]}")
        if self.revision != commit:
            _write_atomic(self.storage / "refs" / self.revision, commit)
        emit(
            "done",
            path=str(snapshot),
            commit=commit,
            files=[{"path": p, "size": s} for p, s in sizes.items()],
        )
        return snapshot

    def _fetch(self, f: _Planned, commit: str) -> int:
        """Make `blobs/<etag>` hold the file, resuming a partial; returns its size."""
        meta = get_hf_file_metadata(
            hf_hub_url(self.repo, f.path, revision=commit), timeout=self.meta_timeout
        )
        etag = meta.etag
        if etag is None:
            raise WorkerError("other", f"the Hub sent no ETag for {f.path}")
        size = meta.size if meta.size is not None else f.size
        blob = self.storage / "blobs" / etag
        if blob.is_file():
            return self._finished(f.path, blob)
        lock = self.cache_dir / ".locks" / self.storage.name / f"{etag}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        blob.parent.mkdir(parents=True, exist_ok=True)
        with WeakFileLock(str(lock)):
            if blob.is_file():  # another process finished it while we waited
                return self._finished(f.path, blob)
            headers = build_hf_headers()
            headers["Accept-Encoding"] = "identity"  # byte offsets must be file offsets
            url = hf_hub_url(self.repo, f.path, revision=commit)
            if not _same_origin(url, meta.location):
                headers.pop("authorization", None)  # a signed CDN url: the token stays home
            part = blob.with_name(f"{etag}.incomplete")
            digest = self._digest(f, etag, size)
            self._download(f.path, meta.location, headers, part, size, digest)
            os.replace(part, blob)
        return self._finished(f.path, blob)

    def _finished(self, path: str, blob: Path) -> int:
        size = blob.stat().st_size
        self.progress.set(path, size, force=True)
        return size

    @staticmethod
    def _digest(f: _Planned, etag: str, size: int | None) -> Digest | None:
        """The hash to check, only where two sources agree on what it is: a sha256 ETag (the
        LFS oid, as huggingface_hub itself treats it), or a regular file whose ETag is the
        git blob id the listing gave. Anything else is checked by size only."""
        if size is None:
            return None
        if len(etag) == 64 and (f.sha256 is None or f.sha256 == etag):
            return Digest("sha256", etag, size)
        if f.sha256 is None and f.blob_id is not None and etag == f.blob_id and len(etag) == 40:
            return Digest("git-sha1", etag, size)
        return None

    def _download(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        part: Path,
        size: int | None,
        digest: Digest | None,
    ) -> None:
        resumed = part.is_file() and part.stat().st_size > 0
        for attempt in (1, 2):
            have = part.stat().st_size if part.is_file() else 0
            if size is not None and have > size:
                part.unlink()
                have = 0
            hasher = digest.new() if digest else None
            if have and hasher is not None:
                self._hash_prefix(name, part, have, hasher)
            self.progress.set(name, have, force=True)
            hasher = self._transfer(name, url, headers, part, have, size, digest, hasher)
            if hasher is None or digest is None or hasher.hexdigest() == digest.expected:
                return
            part.unlink()
            if not (resumed and attempt == 1):
                raise WorkerError("other", f"{name}: content does not match its {digest.algorithm}")
            # The partial left by an earlier attempt was damaged (e.g. a crash left zeros at
            # its end): start this file over, once.
            log(f"{name}: resumed content did not match its hash; downloading it again")

    def _transfer(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        part: Path,
        have: int,
        size: int | None,
        digest: Digest | None,
        hasher: Hasher | None,
    ) -> Hasher | None:
        """Append the rest of the file to `part` (Range from `have`), retrying broken
        transfers; returns the hasher fed with the whole file."""
        idle = 0  # consecutive attempts without a new byte
        while size is None or have < size:
            before = have
            request_headers = dict(headers)
            if have:
                request_headers["Range"] = f"bytes={have}-"
            try:
                with get_session().stream(
                    "GET", url, headers=request_headers, timeout=self.transfer_timeout
                ) as response:
                    if response.status_code in RETRY_STATUSES:
                        raise _Transient(f"HTTP {response.status_code}")
                    if response.status_code == 416 and have:
                        # The server says our partial is not a prefix of this file: start over.
                        part.unlink()
                        have, hasher = 0, digest.new() if digest else None
                        raise _Transient("range not satisfiable, partial dropped")
                    hf_raise_for_status(response)
                    if have and response.status_code != 206:
                        # The server ignored the Range and sends the whole file: rewrite it.
                        have, hasher = 0, digest.new() if digest else None
                        self.progress.set(name, 0, force=True)
                    with part.open("ab" if have else "wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                            if hasher is not None:
                                hasher.update(chunk)
                            have += len(chunk)
                            self.progress.set(name, have)
                if size is None:
                    break
                if have > size:
                    part.unlink()
                    raise WorkerError("other", f"{name}: received {have} bytes, expected {size}")
                if have < size:
                    raise _Transient(f"body ended at {have} of {size} bytes")
            except (httpx2.TransportError, _Transient) as e:
                idle = 0 if have > before else idle + 1
                if idle > len(_RETRY_DELAYS_S):
                    raise WorkerError("interrupted", f"{name}: {type(e).__name__}: {e}") from e
                log(f"{name}: {type(e).__name__}: {e}; resuming at byte {have}")
                time.sleep(_RETRY_DELAYS_S[idle - 1] if idle else 0.1)
        self.progress.set(name, have, force=True)
        return hasher

    def _hash_prefix(self, name: str, part: Path, have: int, hasher: Hasher) -> None:
        """Hash the bytes an earlier attempt left, announcing it (real work, not a stall)."""
        done = 0
        last = 0.0
        with part.open("rb") as src:
            while done < have:
                block = src.read(min(_HASH_BLOCK, have - done))
                if not block:
                    break
                hasher.update(block)
                done += len(block)
                now = time.monotonic()
                if now - last >= _VERIFY_INTERVAL_S:
                    last = now
                    emit("verifying", file=name, done_bytes=done, total_bytes=have)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download a Hugging Face model snapshot.")
    parser.add_argument("--repo", required=True, help="ORG/REPO")
    parser.add_argument("--cache-dir", required=True, type=Path, help="the hub cache (HF_HOME/hub)")
    parser.add_argument("--revision", default="main")
    args = parser.parse_args(argv)
    disable_progress_bars()  # stdout is for JSON lines; bars would be noise on stderr
    emit("start")
    worker = Worker(args.repo, args.cache_dir, args.revision)
    try:
        worker.run()
    except Exception as e:
        kind = classify(e, worker.planned)
        message = str(e).strip() or type(e).__name__
        emit("error", kind=kind, message=f"{type(e).__name__}: {message}"[:2000])
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):  # the parent went away: nothing to tell
        sys.exit(main())
