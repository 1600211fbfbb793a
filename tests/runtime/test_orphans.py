"""No orphaned engine survives its backend, and leftover reaping never touches a process
we did not start.

* A backend killed with SIGKILL takes its engine with it (PR_SET_PDEATHSIG), and the next
  backend's `reap_orphans` cleans the registry it left behind.
* `reap_orphans` ends a recorded process only when its owner is gone AND its pid, start
  time and command line all still match the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from app_harness import pid_gone, wait_until
from legal_assistant.config import Settings
from legal_assistant.runtime.registry import Registry
from legal_assistant.runtime.supervisor import Supervisor

HELPER = Path(__file__).parent / "helpers" / "run_supervisor.py"
WAIT = 30.0


def registry_entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    engines: list[dict[str, object]] = json.loads(path.read_text())["engines"]
    return engines


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert pid_gone(proc.pid)
    return proc.pid


# --------------------------------------------------------------------------- 16
async def test_backend_sigkill_takes_engine_along(
    fake_settings: Settings, fake_model: Callable[..., Path], tmp_path: Path
) -> None:
    model = f"mlx:{fake_model('a')}"
    data_dir = fake_settings.data_dir
    registry_file = Path(data_dir) / "engines.json"
    stderr_path = tmp_path / "backend.stderr"
    with stderr_path.open("wb") as stderr:
        backend = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HELPER),
            str(data_dir),
            str(fake_settings.resolved_hf_home),
            model,
            "--",
            *fake_settings.mlx_command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert backend.stdout is not None
        try:
            line = await asyncio.wait_for(backend.stdout.readline(), WAIT)
        except TimeoutError:
            pytest.fail(f"backend printed no pid; stderr:\n{stderr_path.read_text()}")
        assert line.startswith(b"engine-pid "), (line, stderr_path.read_text())
        engine_pid = int(line.split()[1])
        engine = psutil.Process(engine_pid)
        assert engine.ppid() == backend.pid
        assert [e["pid"] for e in registry_entries(registry_file)] == [engine_pid]
        assert registry_entries(registry_file)[0]["owner_pid"] == backend.pid

        backend.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(backend.wait(), WAIT) == -signal.SIGKILL
        t0 = time.monotonic()
        await wait_until(lambda: pid_gone(engine_pid), 5.0, f"engine {engine_pid} to die")
        assert time.monotonic() - t0 < 5.0
    finally:
        if backend.returncode is None:
            backend.kill()
            await backend.wait()

    # The killed backend could not clean its registry: the next one does, on start-up.
    assert [e["pid"] for e in registry_entries(registry_file)] == [engine_pid]
    sup = Supervisor(fake_settings)
    try:
        ended = sup.reap_orphans()
    finally:
        await sup.shutdown()
    assert ended == []  # nothing left to kill: the kernel already did
    assert registry_entries(registry_file) == []
    assert sup.registry.entries() == []


# --------------------------------------------------------------------------- 17
@pytest.fixture
def spawn_sleeper() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(code: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


async def test_reap_orphans_is_precise(
    tmp_path: Path, spawn_sleeper: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "engines.json"
    code_a = "import time; time.sleep(60)"
    argv_a = [sys.executable, "-c", code_a]
    orphan = spawn_sleeper(code_a)  # recorded exactly: must be ended
    similar = spawn_sleeper("import time; time.sleep(61)")  # recorded with A's argv
    reused = spawn_sleeper(code_a)  # same argv, but "another" start time (pid reuse)
    foreign = spawn_sleeper(code_a)  # recorded by a backend that is still alive
    procs = (orphan, similar, reused, foreign)

    def execed(pid: int) -> bool:
        return psutil.Process(pid).cmdline()[:2] == [sys.executable, "-c"]

    for proc in procs:
        await wait_until(functools.partial(execed, proc.pid), WAIT, f"{proc.pid} to exec")

    registry = Registry(path)
    for proc in procs:
        registry.add(pid=proc.pid, port=0, model="mlx:fake", argv=argv_a)
    dead = dead_pid()
    live_owner = psutil.Process(similar.pid)
    raw = json.loads(path.read_text())
    for entry in raw["engines"]:
        if entry["pid"] == foreign.pid:
            entry["owner_pid"] = live_owner.pid
            entry["owner_create_time"] = live_owner.create_time()
        else:
            entry["owner_pid"] = dead
        if entry["pid"] == reused.pid:
            entry["create_time"] -= 100.0
    path.write_text(json.dumps(raw))

    ended = Registry(path).reap_orphans(grace=1.0)

    assert [e.pid for e in ended] == [orphan.pid]
    assert orphan.wait(timeout=5) is not None
    assert pid_gone(orphan.pid)
    for proc in (similar, reused, foreign):
        assert proc.poll() is None, f"{proc.pid} was killed"
        assert psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE
    # Entries of dead owners are dropped; the live backend's entry stays.
    assert [e["pid"] for e in registry_entries(path)] == [foreign.pid]


async def test_reap_orphans_keeps_own_engines(
    tmp_path: Path, spawn_sleeper: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    """Entries this very backend wrote are its running engines, not orphans."""
    path = tmp_path / "engines.json"
    code = "import time; time.sleep(60)"
    mine = spawn_sleeper(code)
    registry = Registry(path)
    registry.add(pid=mine.pid, port=0, model="mlx:fake", argv=[sys.executable, "-c", code])

    assert registry.reap_orphans(grace=1.0) == []
    assert mine.poll() is None
    assert [e.pid for e in registry.entries()] == [mine.pid]
