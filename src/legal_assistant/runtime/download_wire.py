"""The download worker's side of its protocol: the JSON lines it prints, the content
hashes it checks, and how a failure becomes one of the error kinds the parent maps to a
user message (see `download_worker` for the line format and `downloads` for the parent).

Split from `download_worker` so the transfer logic reads on its own; imported only by it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

_PROGRESS_INTERVAL_S = 0.1
# Statuses worth retrying; before the file list is known they mean the Hub is unreachable.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class WorkerError(Exception):
    """A failure already classified (`kind`: one of the kinds in `download_worker`'s docstring)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Digest:
    """The content hash a file must have: sha256 (LFS oid) or git blob sha1."""

    algorithm: str  # "sha256" or "git-sha1"
    expected: str
    size: int

    def new(self) -> Hasher:
        if self.algorithm == "sha256":
            return hashlib.sha256()
        hasher = hashlib.sha1(usedforsecurity=False)
        hasher.update(b"blob %d\0" % self.size)
        return hasher


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(f"download_worker: {message}", file=sys.stderr, flush=True)


class Progress:
    """Bytes on disk per file; a `progress` line when the sum moved and 0.1 s passed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.per_file: dict[str, int] = {}
        self.done = 0
        self._started = time.monotonic()
        self._last_emit = 0.0
        self._last_sent = -1

    def set(self, path: str, nbytes: int, *, force: bool = False) -> None:
        self.done += nbytes - self.per_file.get(path, 0)
        self.per_file[path] = nbytes
        now = time.monotonic()
        if self.done != self._last_sent and (
            force or now - self._last_emit >= _PROGRESS_INTERVAL_S
        ):
            self._last_emit = now
            self._last_sent = self.done
            emit("progress", done_bytes=self.done, t=round(now - self._started, 4))


def classify(exc: BaseException, planned: bool) -> str:
    """The error kind of an exception raised while downloading."""
    if isinstance(exc, WorkerError):
        return exc.kind
    lost = "interrupted" if planned else "unreachable"
    if isinstance(exc, OfflineModeIsEnabled):
        return "offline"
    if isinstance(exc, LocalEntryNotFoundError):  # the library fell back to a cache it lacks
        return "interrupted" if planned else "offline"
    if isinstance(exc, RepositoryNotFoundError | RevisionNotFoundError | RemoteEntryNotFoundError):
        return "not_found"
    if isinstance(exc, HFValidationError):  # a malformed repo id
        return "not_found"
    if isinstance(exc, HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = response.status_code if response is not None else None
        if status in (401, 404):
            return "not_found"
        if status in RETRY_STATUSES:
            return lost
        return "other"
    if isinstance(exc, httpx2.TransportError):
        return lost
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "disk_full"
    return "other"
