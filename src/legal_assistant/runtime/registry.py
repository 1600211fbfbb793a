"""On-disk record of the engine processes this backend runs, to end leftovers later.

PR_SET_PDEATHSIG covers a backend that dies; this covers the rest (a watchdog killed with
its backend, a platform without PDEATHSIG, an engine that escaped its group). On startup
we end every recorded process whose owner is gone **and** whose pid, start time and
command line still match what we recorded — never a process we did not start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

log = logging.getLogger("legal_assistant")


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    pid: int
    create_time: float
    port: int
    model: str
    argv: list[str]
    owner_pid: int
    owner_create_time: float


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._me = os.getpid()
        self._my_create_time = _create_time(self._me) or 0.0

    def _read(self) -> list[RegistryEntry]:
        try:
            raw = json.loads(self.path.read_text())
            return [RegistryEntry(**e) for e in raw.get("engines", [])]
        except (OSError, ValueError, TypeError):
            return []

    def _write(self, entries: list[RegistryEntry]) -> None:
        """Best effort: a full disk must not fail an engine start, nor (worse) leave a
        stop half done with the engine stuck in STOPPING. The kernel's PDEATHSIG still
        ends our engines with us; a stale entry is harmless (reaping checks pid, start
        time and command line)."""
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"engines": [asdict(e) for e in entries]}, indent=1))
            os.replace(tmp, self.path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            log.warning("Could not update the engine registry %s: %s", self.path, e)

    def add(self, *, pid: int, port: int, model: str, argv: list[str]) -> None:
        entry = RegistryEntry(
            pid=pid,
            create_time=_create_time(pid) or time.time(),
            port=port,
            model=model,
            argv=list(argv),
            owner_pid=self._me,
            owner_create_time=self._my_create_time,
        )
        with self._lock:
            entries = [e for e in self._read() if e.pid != pid]
            self._write([*entries, entry])

    def remove(self, pid: int) -> None:
        with self._lock:
            entries = self._read()
            kept = [e for e in entries if e.pid != pid]
            if len(kept) != len(entries):
                self._write(kept)

    def entries(self) -> list[RegistryEntry]:
        with self._lock:
            return self._read()

    def _owner_alive(self, e: RegistryEntry) -> bool:
        if e.owner_pid == self._me:
            return e.owner_create_time == self._my_create_time
        ct = _create_time(e.owner_pid)
        return ct is not None and abs(ct - e.owner_create_time) < 1.0

    def reap_orphans(self, grace: float = 3.0) -> list[RegistryEntry]:
        """End recorded engines whose backend is gone; return the ones ended."""
        ended: list[RegistryEntry] = []
        with self._lock:
            entries = self._read()
            kept: list[RegistryEntry] = []
            for e in entries:
                if self._owner_alive(e) and e.owner_pid != self._me:
                    kept.append(e)  # another live backend's engine: not ours to touch
                    continue
                if e.owner_pid == self._me and self._owner_alive(e):
                    kept.append(e)
                    continue
                if _matches(e):
                    _terminate_group(e.pid, grace)
                    ended.append(e)
            self._write(kept)
        return ended


def _matches(e: RegistryEntry) -> bool:
    """Same pid, same start time, same command line: it is the process we started."""
    try:
        proc = psutil.Process(e.pid)
        return abs(proc.create_time() - e.create_time) < 1.0 and proc.cmdline() == e.argv
    except psutil.Error:
        return False


def _terminate_group(pid: int, grace: float) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    # Our engines are session leaders (pgid == pid); never signal a group we do not lead.
    target_group = pgid == pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if target_group:
            os.killpg(pgid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if target_group:
            os.killpg(pgid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
