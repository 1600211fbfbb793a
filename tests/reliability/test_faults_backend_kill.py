"""Fault: the backend itself is killed with SIGKILL (no shutdown code runs at all).

`legal-assistant serve` runs as a real subprocess with its own data directory, engines
being the fake engine (tests/fakes/fake_engine.py, a stand-in of mlx_lm.server / vLLM)
so that one can be held in its start phase on cue. While one engine is READY and another
is still STARTING, the backend is SIGKILLed:

* the process table (psutil, whole system) shows zero engine processes of that backend
  within a few seconds — the kernel kills them (PR_SET_PDEATHSIG);
* a new backend on the same data directory starts cleanly: its registry
  (`<data_dir>/engines.json`) ends up empty, it logs no warning/error/traceback, serves;
* processes owned by another program with a similar — even byte-identical — command line
  are never touched by either backend: a real `python -m mlx_lm server --model X --port P`
  started by the test, and a copy of the killed engine's exact command line started by
  the test before the second backend reads the dead one's registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from reliability_helpers import pid_alive, processes_with_marker

from app_harness import (
    fake_engine_command,
    fake_model_dir,
    free_port,
    hermetic_env,
    poll,
    run_backend,
)


def registry(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "engines.json"
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text())["engines"]
    return entries


@contextlib.contextmanager
def foreign(argv: list[str], env: dict[str, str] | None = None) -> Iterator[psutil.Process]:
    """A process of "another program" (started by the test, in its own session)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield psutil.Process(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)


def untouched(proc: psutil.Process, create_time: float) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() == create_time
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def foreign_mlx(tmp_path: Path) -> Iterator[psutil.Process]:
    """A real `python -m mlx_lm server --model X --port P` owned by "someone else". Its
    model does not exist (offline), so it idles alive with a dead generation thread
    (FIELD-NOTES.md) — exactly the command line shape our MLX engines have."""
    hf = tmp_path / "foreign-hf"
    (hf / "hub").mkdir(parents=True)
    env = {**os.environ, "HF_HOME": str(hf), "HF_HUB_OFFLINE": "1"}
    argv = [
        sys.executable,
        "-m",
        "mlx_lm",
        "server",
        "--model",
        str(tmp_path / "foreign-model"),
        "--port",
        str(free_port()),
    ]
    with foreign(argv, env) as proc:
        yield proc


async def test_backend_sigkill_with_engines_running_and_starting(
    tmp_path: Path, foreign_mlx: psutil.Process
) -> None:
    marker = str(tmp_path / "fake-models")  # in every engine's --model: our marker
    data_dir = tmp_path / "data"
    ready_model = fake_model_dir(tmp_path, "ready", tokens=3)
    slow_model = fake_model_dir(tmp_path, "slow", start_delay=120)
    env = hermetic_env(
        LEGAL_ASSISTANT_DATA_DIR=str(data_dir),
        LEGAL_ASSISTANT_MODELS_DIR=str(tmp_path / "models"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_OLLAMA_URL=f"http://127.0.0.1:{free_port()}",
        LEGAL_ASSISTANT_MLX_COMMAND=json.dumps(fake_engine_command()),
        LEGAL_ASSISTANT_VLLM_COMMAND=json.dumps(fake_engine_command()),
        LEGAL_ASSISTANT_LOAD_TIMEOUT_S="200",
        LEGAL_ASSISTANT_STOP_GRACE_S="1",
        HF_HOME=str(tmp_path / "hf"),
    )
    foreign_ct = foreign_mlx.create_time()
    deadline = asyncio.timeout(90)
    async with deadline:
        with run_backend(env, tmp_path / "first.stderr") as first:
            async with httpx.AsyncClient(base_url=first.url, timeout=30, trust_env=False) as c:
                # A READY engine (vLLM kind) ...
                resp = await c.post("/api/engines/start", json={"model_id": f"vllm:{ready_model}"})
                assert resp.status_code == 200, resp.text
                ready_pid = resp.json()["pid"]
                # ... and an MLX engine held in its start phase (120 s start delay).
                starting = asyncio.create_task(
                    c.post("/api/engines/start", json={"model_id": f"mlx:{slow_model}"})
                )

                def both_spawned() -> list[dict[str, Any]] | None:
                    entries = registry(data_dir)
                    return entries if len(entries) == 2 else None

                entries = await poll(both_spawned, timeout=20, what="two registry entries")
                slow_pid = next(e["pid"] for e in entries if e["pid"] != ready_pid)
                engines = (await c.get("/api/engines")).json()["engines"]
                states = {e["model"]: e["state"] for e in engines}
                assert states == {f"vllm:{ready_model}": "ready", f"mlx:{slow_model}": "starting"}
                for pid in (ready_pid, slow_pid):
                    assert psutil.Process(pid).ppid() == first.proc.pid
                ours = {p.pid for p in processes_with_marker(marker)}
                assert ours == {ready_pid, slow_pid}, ours

                first.proc.send_signal(signal.SIGKILL)
                assert first.proc.wait(15) == -signal.SIGKILL
                killed_at = time.monotonic()
                await poll(
                    lambda: not processes_with_marker(marker),
                    timeout=5,
                    interval=0.02,
                    what="every engine of the killed backend to be gone",
                )
                gone_after = time.monotonic() - killed_at
                with contextlib.suppress(httpx.HTTPError):
                    await starting  # the backend died under it: a transport error

        # The dead backend could not clean its registry.
        dead_entries = registry(data_dir)
        assert {e["pid"] for e in dead_entries} == {ready_pid, slow_pid}
        # Another program now runs the very command line the dead backend recorded (its
        # fake engine idles in the 120 s start delay): only its pid and start time differ.
        twin_argv = next(e["argv"] for e in dead_entries if e["pid"] == slow_pid)
        with foreign(twin_argv) as twin:
            twin_ct = twin.create_time()
            with run_backend(env, tmp_path / "second.stderr") as second:
                async with httpx.AsyncClient(base_url=second.url, timeout=30, trust_env=False) as c:
                    assert registry(data_dir) == []  # reaped at start-up
                    body = {
                        "model": f"vllm:{ready_model}",
                        "messages": [{"role": "user", "content": "Bonjour"}],
                    }
                    resp = await c.post("/v1/chat/completions", json=body)
                    assert resp.status_code == 200, resp.text
                    (entry,) = registry(data_dir)
                    assert entry["owner_pid"] == second.proc.pid
                second.proc.send_signal(signal.SIGTERM)
                assert second.proc.wait(15) in (0, -signal.SIGTERM)
                assert pid_alive(twin.pid) and untouched(twin, twin_ct)
            stderr = second.stderr()
            assert registry(data_dir) == []
            assert untouched(twin, twin_ct), "a foreign process with our command line was hit"

    assert gone_after < 5.0
    for word in ("Traceback", "ERROR", "WARNING", "orphan"):
        assert word not in stderr, stderr
    assert "Goodbye!" in stderr
    # The foreign mlx_lm server lived through both backends.
    assert untouched(foreign_mlx, foreign_ct)
    assert foreign_mlx.cmdline()[1:4] == ["-m", "mlx_lm", "server"]
