"""Shared fixtures: hermetic settings (temp data dir, temp HF home), the bundled model
converted once per session, a second conversion at another path (for switch tests), and
the fake engine as an `mlx_command`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from legal_assistant.config import Settings
from legal_assistant.runtime import blas
from legal_assistant.runtime.bundled import ensure_bundled_model
from legal_assistant.runtime.supervisor import Supervisor

FAKE_ENGINE = Path(__file__).parent / "fakes" / "fake_engine.py"

# A backend warms its default model at start-up (a real engine start): only the tests
# about warming want that (tests/runtime/test_warmup*.py set warm_default=True).
os.environ.setdefault("LEGAL_ASSISTANT_WARM_DEFAULT", "false")

# MLX's CPU backend compiles kernels into $TMPDIR/mlx/<version>/cpu/tmp_<hash>.cpp, a name
# shared by every process on the machine: two processes compiling the same kernel at once
# truncate each other's file (seen as "Failed to compile function Cf_contiguous" when a
# second suite ran beside this one). This session and the engines it starts (which keep
# TMPDIR, runtime/engines/base.py) get a private directory.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="legal-assistant-tests-"))
os.environ["TMPDIR"] = str(_SESSION_TMP)
tempfile.tempdir = None  # recompute from TMPDIR
# And as engines run it on Linux (runtime/engines/mlx.py): no g++ kernel compilation.
if sys.platform == "linux":
    os.environ.setdefault("MLX_DISABLE_COMPILE", "1")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the private TMPDIR (with pytest's tmp_path trees, hundreds of MB) after a
    green run: each session has its own, so pytest's keep-the-last-three never applies and
    a CI machine would fill up. A failed run keeps it for inspection, and says where."""
    if exitstatus == 0:
        shutil.rmtree(_SESSION_TMP, ignore_errors=True)
    else:
        print(f"\ntest temp files kept in {_SESSION_TMP}", file=sys.stderr)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def bundled_model(models_dir: Path) -> Path:
    """The 4-bit conversion (small: tests copy it as a path model). The alias runs the
    variant this machine's BLAS calls for (float32 with a fast one): converted too, so a
    first turn starts at "starting"."""
    ensure_bundled_model(models_dir, blas.choose().variant)
    return ensure_bundled_model(models_dir, "4bit")


@pytest.fixture(scope="session")
def second_model(bundled_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model again, at another path: a different model id for switch tests."""
    target = tmp_path_factory.mktemp("second") / "smollm2-copy"
    shutil.copytree(bundled_model, target)
    return target


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    path = tmp_path / "hf"
    (path / "hub").mkdir(parents=True)
    return path


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path, hf_home: Path) -> Settings:
    """Real engine (mlx_lm.server) settings, isolated in a temp dir."""
    return Settings(
        data_dir=tmp_path / "data",
        models_dir=models_dir,
        hf_home=hf_home,
        load_timeout_s=60.0,
        drain_timeout_s=30.0,
        stop_grace_s=3.0,
    )


@pytest.fixture
def fake_model(tmp_path: Path) -> Callable[..., Path]:
    """Make a model directory the fake engine serves, with per-model behaviour knobs."""

    def make(name: str = "fake-a", **knobs: Any) -> Path:
        path = tmp_path / "fake-models" / name
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"model_type": "fake"}))
        (path / "fake_engine.json").write_text(json.dumps(knobs))
        return path

    return make


@pytest.fixture
def fake_settings(tmp_path: Path, hf_home: Path) -> Settings:
    """Settings whose MLX command is the fake engine (lifecycle edge cases)."""
    return Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        hf_home=hf_home,
        mlx_command=[sys.executable, str(FAKE_ENGINE)],
        load_timeout_s=5.0,
        drain_timeout_s=10.0,
        stop_grace_s=1.0,
    )


@pytest.fixture
async def make_sup() -> AsyncIterator[Callable[[Settings], Supervisor]]:
    """Supervisor factory; every supervisor made is shut down, and its engines checked
    gone, at teardown."""
    from app_harness import pid_gone

    made: list[Supervisor] = []

    def make(settings: Settings) -> Supervisor:
        sup = Supervisor(settings)
        made.append(sup)
        return sup

    yield make
    pids: set[int] = set()
    for sup in made:
        pids.update(e.pid for e in sup.engines() if e.pid is not None)
        await asyncio.wait_for(sup.shutdown(), 15.0)
    for pid in pids:
        assert pid_gone(pid), f"engine pid {pid} leaked"
