"""One backend per data directory, enforced with an OS file lock.

The embedded SurrealDB engine (surrealkv) takes no lock of its own: two processes can
open the same directory at once and silently corrupt each other's writes. So the backend
holds an exclusive `flock` on `<data_dir>/backend.lock` for its whole life.

`flock` rather than a pid file alone because the kernel drops the lock when the holding
process dies, however it dies (SIGKILL, power loss of the process, OOM): a crashed backend
never leaves a stale lock that a human must delete. The pid written into the file is only
there to make the refusal message useful ("used by pid 1234").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from legal_assistant.errors import LegalAssistantError

LOCK_FILE_NAME = "backend.lock"


class DataDirLock:
    """Exclusive, non-blocking lock on a data directory.

    Usage::

        with DataDirLock(settings.data_dir):
            ...  # open the database, serve

    `acquire()` never waits: a second backend must fail fast with `data_dir_locked`
    instead of hanging behind the first one.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise `LegalAssistantError("data_dir_locked")` at once.

        Idempotent on an object that already holds the lock.
        """
        if self._fd is not None:
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # os.open makes the descriptor non-inheritable (PEP 446): engine subprocesses
            # the backend spawns must not keep the lock alive after the backend has died.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a regular file in the way, read-only, full, no permission
            raise unusable_data_dir(self.data_dir, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder is not None else "another process"
            raise LegalAssistantError(
                "data_dir_locked", detail=f"{self.data_dir} is used by {who}"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException as e:
            os.close(fd)  # closing the descriptor also drops the flock
            if isinstance(e, OSError):  # e.g. no space left for the pid
                raise unusable_data_dir(self.data_dir, e) from None
            raise
        self._fd = fd

    def release(self) -> None:
        """Drop the lock; a no-op when it is not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear our pid first so nobody reports a backend that is gone.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        # Last resort only; the OS would release it at exit anyway.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def unusable_data_dir(data_dir: Path, err: OSError) -> LegalAssistantError:
    """A data directory the backend cannot write to, said plainly (no traceback)."""
    why = err.strerror or str(err)
    return LegalAssistantError(
        "storage_error",
        f"{data_dir}: {why}",
        message_fr=f"❌ Le dossier de données {data_dir} est inutilisable : {why}. "
        "Choisissez un dossier accessible en écriture (LEGAL_ASSISTANT_DATA_DIR).",
        message_en=f"❌ The data directory {data_dir} cannot be used: {why}. "
        "Pick a writable directory (LEGAL_ASSISTANT_DATA_DIR).",
    )


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, or None if it is unreadable (mid-write, foreign file)."""
    try:
        raw = os.pread(fd, 64, 0)
    except OSError:
        return None
    try:
        return int(raw.decode("ascii", errors="replace").strip())
    except ValueError:
        return None
