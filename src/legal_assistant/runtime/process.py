"""One child process: spawned in its own session, dies with the backend, its output drained
continuously into a ring buffer, stopped in numbered steps.

Why each piece:
* own session/process group — so a stop can kill the engine *and* anything it forked;
* die-with-parent — on Linux the kernel sends SIGKILL to the child when the backend dies
  (PR_SET_PDEATHSIG); elsewhere a tiny watchdog wrapper polls the parent pid. Together
  with the on-disk registry this is how "orphaned servers holding memory" cannot happen;
* output drained by a task — the original kept stderr in an undrained PIPE, which blocks
  the engine once the pipe buffer fills. Lines go to a bounded deque for the API/CLI and
  to a callback that detects fatal lines as they appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable

import psutil

_PR_SET_PDEATHSIG = 1
_CHILDREN_REFRESH_S = 1.0
_MAX_LINE = 4000

if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl = _libc.prctl
else:  # pragma: no cover - macOS uses the watchdog wrapper instead
    _prctl = None


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    if _prctl is None:
        return None
    prctl = _prctl

    def preexec() -> None:  # runs in the child between fork and exec: keep it tiny
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _watchdog_argv(argv: list[str]) -> list[str]:
    # No PDEATHSIG: a watchdog process that kills the engine's group when we die.
    return [sys.executable, "-m", "legal_assistant.runtime.watchdog", str(os.getpid()), "--", *argv]


# Where the kernel cannot end the engine with us (macOS), the engine runs under a watchdog.
NEEDS_WATCHDOG = _prctl is None


def platform_argv(argv: list[str]) -> list[str]:
    """`argv` as it must be spawned to die with this process on this platform."""
    return _watchdog_argv(argv) if NEEDS_WATCHDOG else argv


class EngineProcess:
    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        log_lines: int = 500,
        on_line: Callable[[str], None] | None = None,
        watchdog: bool | None = None,
    ) -> None:
        self.argv = argv
        # With a watchdog, the process we spawn is the wrapper; the engine is its child.
        # Everything measured or recorded (CPU, RSS, the orphan registry) is the engine's.
        self.watchdog = NEEDS_WATCHDOG if watchdog is None else watchdog
        self.env = env
        self.logs: deque[str] = deque(maxlen=log_lines)
        self.last_output_at = 0.0
        self._on_line = on_line
        self._proc: asyncio.subprocess.Process | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._psutil: psutil.Process | None = None  # the leader we spawned
        self._engine: psutil.Process | None = None  # the engine itself (== leader w/o watchdog)
        self._children: list[psutil.Process] = []
        self._children_at = float("-inf")
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def engine_pid(self) -> int | None:
        """The engine's own pid (the watchdog's child on macOS), once known."""
        return self._engine.pid if self._engine is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def spawn(self) -> None:
        """Start the process. Raises OSError (e.g. FileNotFoundError) if it cannot exec."""
        self.started_at = time.monotonic()
        self.last_output_at = self.started_at
        self._proc = await asyncio.create_subprocess_exec(
            *(_watchdog_argv(self.argv) if self.watchdog else self.argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=None if self.watchdog else die_with_parent(os.getpid()),
        )
        with contextlib.suppress(psutil.Error):
            self._psutil = psutil.Process(self._proc.pid)
        if not self.watchdog:
            self._engine = self._psutil
        self._drain_task = asyncio.create_task(self._drain(), name=f"drain-{self._proc.pid}")

    async def _drain(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream = self._proc.stdout
        pending = b""
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                break
            pending += chunk
            # mlx_lm's progress bars use \r; treat it as a line end too.
            *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                self._line(raw)
            if len(pending) > _MAX_LINE:
                self._line(pending)
                pending = b""
        if pending:
            self._line(pending)

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()[:_MAX_LINE]
        if not line:
            return
        self.last_output_at = time.monotonic()
        self.logs.append(line)
        if self._on_line is not None:
            self._on_line(line)

    async def wait(self) -> int:
        assert self._proc is not None
        code = await self._proc.wait()
        if self._drain_task is not None:
            # The pipe closes when the process (group) exits; let the last lines land.
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._drain_task), 1.0)
        return code

    async def wait_engine_pid(self, timeout: float = 5.0) -> int | None:
        """Under a watchdog, wait (bounded) for the wrapper to have spawned the engine."""
        deadline = time.monotonic() + timeout
        # No event tells us the wrapper has forked: a short bounded poll it is.
        while self._engine is None and self.running and time.monotonic() < deadline:
            self._find_engine()
            if self._engine is None:
                await asyncio.sleep(0.01)
        return self.engine_pid

    def _find_engine(self) -> None:
        if self._engine is not None or self._psutil is None:
            return
        with contextlib.suppress(psutil.Error):
            children = self._psutil.children()
            if children:
                self._engine = children[0]

    def _tree(self) -> list[psutil.Process]:
        """The engine and every process it forked (vLLM's workers...), not the wrapper.
        Listing children scans every process on the machine: it is refreshed at most once
        a second (the stall watch samples CPU ten times a second during a load)."""
        self._find_engine()
        if self._engine is None:
            return []
        now = time.monotonic()
        if now - self._children_at >= _CHILDREN_REFRESH_S:
            self._children_at = now
            with contextlib.suppress(psutil.Error):
                self._children = self._engine.children(recursive=True)
        return [self._engine, *self._children]

    def cpu_time(self) -> float | None:
        """User+system CPU seconds of the engine and its children: a loading model burns
        CPU, a hung one does not — this is how a stall is told apart from slow progress."""
        tree = self._tree()
        if not tree:
            return None
        total = 0.0
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                # children_*: CPU of children that already exited and were reaped.
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def rss_bytes(self) -> int | None:
        if not self.running:
            return None
        tree = self._tree()
        if not tree:
            return None
        total = 0
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                total += int(proc.memory_info().rss)
        return total

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def stop(self, grace: float, graceful_signal: int = signal.SIGTERM) -> int | None:
        """Stop the engine:
        1. send the graceful signal to the whole process group;
        2. wait up to `grace` seconds for the leader to exit;
        3. SIGKILL the whole group (also reaps stragglers the engine forked);
        4. wait for the exit (reap), bounded.
        Returns the exit code (None only if the kernel never reported the exit)."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._signal_group(graceful_signal)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace)
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wait(), 10.0)
        return self._proc.returncode

    def tail(self, n: int = 20) -> list[str]:
        return list(self.logs)[-n:]
