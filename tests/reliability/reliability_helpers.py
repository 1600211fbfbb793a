"""Helpers specific to the fault-injection tests (tests/reliability/test_faults_*.py): engine
processes found in the process table by psutil, a sampler of how many run at once, the
fake-engine settings of this suite, and `serve_app` with a client pool sized for storms.

Imported as `reliability_helpers` (pytest puts this directory on sys.path; the basename is
unique in the tree). The general harness (the app served by uvicorn in the test's event
loop, chat turns, polls, free ports, the backend as a `serve` process) is tests/app_harness.py.

Everything here is real; waits are polls with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import psutil

import app_harness
from app_harness import RunningApp, fake_engine_command, make_settings, pid_gone
from legal_assistant.config import Settings

# Storms run many turns at once: a pool above httpx's default (100 connections, 20 idle).
CLIENT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)


def pid_alive(pid: int) -> bool:
    return not pid_gone(pid)


def spawn_count(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


# ----------------------------------------------------------------------------- processes
def is_engine_cmdline(cmd: list[str]) -> str | None:
    """'mlx' for an mlx_lm server, 'fake' for the fake engine, else None."""
    joined = " ".join(cmd)
    if "fake_engine.py" in joined:
        return "fake"
    if "mlx_lm" in joined and "server" in joined:
        return "mlx"
    return None


def engine_processes(
    root_pid: int | None = None, *, recursive: bool = True
) -> list[tuple[int, str, list[str]]]:
    """(pid, kind, cmdline) of the live (non-zombie) engine processes under `root_pid`
    (default: this process): its direct children only, or all its descendants."""
    found: list[tuple[int, str, list[str]]] = []
    try:
        children = psutil.Process(root_pid or os.getpid()).children(recursive=recursive)
    except psutil.Error:
        return found
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmd = child.cmdline()
        except psutil.Error:
            continue
        kind = is_engine_cmdline(cmd)
        if kind is not None:
            found.append((child.pid, kind, cmd))
    return found


def processes_with_marker(marker: str) -> list[psutil.Process]:
    """Every live process (anywhere in the table) whose command line contains `marker`
    (a unique temp path): how orphans of a dead backend are found."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class ProcessSampler:
    """Samples the engine processes under this process from a thread (independent of the
    event loop's scheduling), recording the most seen at once, per kind.

    `max_by_kind` counts engines — processes the backend spawned (its direct children);
    `max_all_by_kind` counts every descendant with an engine command line, which also
    catches an engine's own short-lived forks (a fork has its parent's command line until
    it execs) — so it is reported, not used for the residency policy."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.max_by_kind: dict[str, int] = {}
        self.max_all_by_kind: dict[str, int] = {}
        self.samples = 0
        self.worst: list[tuple[int, int, str, list[str]]] = []  # pid, ppid, kind, argv
        self._me = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            procs: list[tuple[int, int, str, list[str]]] = []
            for pid, kind, cmd in engine_processes():
                with contextlib.suppress(psutil.Error):
                    procs.append((pid, psutil.Process(pid).ppid(), kind, cmd))
            direct: dict[str, int] = {}
            every: dict[str, int] = {}
            for _, ppid, kind, _ in procs:
                every[kind] = every.get(kind, 0) + 1
                if ppid == self._me:
                    direct[kind] = direct.get(kind, 0) + 1
            for kind, n in direct.items():
                if n > self.max_by_kind.get(kind, 0):
                    self.max_by_kind[kind] = n
                    self.worst = procs
            for kind, n in every.items():
                self.max_all_by_kind[kind] = max(n, self.max_all_by_kind.get(kind, 0))
            self.samples += 1
            self._stop.wait(self.interval)

    def describe(self) -> list[tuple[int, int, str, list[str]]]:
        return [(pid, ppid, kind, cmd[-6:]) for pid, ppid, kind, cmd in self.worst]

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ----------------------------------------------------------------------------- the app
def serve_app(settings: Settings) -> contextlib.AbstractAsyncContextManager[RunningApp]:
    """`app_harness.serve_app` with a client pool big enough for this suite's storms."""
    return app_harness.serve_app(settings, limits=CLIENT_LIMITS)


def fake_app_settings(root: Path, **overrides: Any) -> Settings:
    """App settings whose MLX (and vLLM) command is the fake engine, isolated under `root`."""
    values: dict[str, Any] = {
        "mlx_command": fake_engine_command(),
        "vllm_command": fake_engine_command(),
        "load_timeout_s": 10.0,
        "stop_grace_s": 1.0,
    }
    values.update(overrides)
    return make_settings(root, root / "models", **values)
