"""Managed engine environments: engines too heavy for the base install.

llama-cpp-python compiles llama.cpp (3.5–5 min on 2 cores), and its default native build
crashes on CPUs with AMX (`ggml_backend_amx_mul_mat`, FIELD-NOTES.md). So it lives in its
own virtual environment under the engines dir, installed on request
(`legal-assistant engines install llamacpp`, `make engines`) with the output streamed as
progress, built with CPU-aware flags, and made visible only once it imports: the venv is
built in a temp dir and renamed into place, so an interrupted install leaves nothing
half-installed that the supervisor would try to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from legal_assistant.errors import LegalAssistantError

LLAMACPP_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
INSTALL_HINT = "legal-assistant engines install llamacpp"
_MARKER = "legal-assistant-engine.json"


def default_engines_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "legal-assistant" / "engines"


def engine_env(engines_dir: Path | None, kind: str) -> Path:
    return (engines_dir or default_engines_dir()) / kind


def engine_python(engines_dir: Path | None, kind: str) -> Path:
    return engine_env(engines_dir, kind) / "bin" / "python"


def is_installed(engines_dir: Path | None, kind: str) -> bool:
    env = engine_env(engines_dir, kind)
    return (env / _MARKER).is_file() and (env / "bin" / "python").exists()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def llamacpp_cmake_args() -> str:
    """Portable x86 flags from what this CPU has; AMX always off (it segfaults on
    multi-token evals on the machines we run on). macOS keeps the default (Metal) build."""
    if sys.platform == "darwin" or platform.machine() not in ("x86_64", "AMD64"):
        return ""
    flags = _cpu_flags()
    on = {
        "GGML_AVX": "avx" in flags,
        "GGML_AVX2": "avx2" in flags,
        "GGML_FMA": "fma" in flags,
        "GGML_F16C": "f16c" in flags,
        "GGML_AVX512": "avx512f" in flags,
        "GGML_AVX512_VNNI": "avx512_vnni" in flags,
        "GGML_AVX512_BF16": "avx512_bf16" in flags,
    }
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{k}={'ON' if v else 'OFF'}" for k, v in on.items()]
    args += ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]
    return " ".join(args)


def _uv() -> str | None:
    return os.environ.get("UV") or shutil.which("uv")


async def _run(argv: list[str], env: dict[str, str], on_line: Callable[[str], None]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    try:
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail = [*tail[-39:], line]
                on_line(line)
        code = await proc.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        raise
    if code != 0:
        raise LegalAssistantError(
            "engine_not_installed",
            f"{' '.join(argv[:4])}... exited with {code}",
            message_fr="❌ L'installation de llama.cpp a échoué (voir les dernières lignes).",
            message_en="❌ Installing llama.cpp failed (see the last lines).",
            log_tail=tail[-15:],
        )


async def install_llamacpp(
    engines_dir: Path | None, on_line: Callable[[str], None], *, force: bool = False
) -> Path:
    """Create the llama.cpp engine environment (idempotent). Returns its python."""
    target = engine_env(engines_dir, "llamacpp")
    if is_installed(engines_dir, "llamacpp") and not force:
        return target / "bin" / "python"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".llamacpp.", dir=target.parent))
    env = dict(os.environ)
    cmake_args = llamacpp_cmake_args()
    if cmake_args:
        env["CMAKE_ARGS"] = cmake_args
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    env["UV_PYTHON_DOWNLOADS"] = "never"
    try:
        uv = _uv()
        python = tmp / "bin" / "python"
        if uv:
            on_line(f"$ uv venv {tmp}")
            await _run(
                [uv, "venv", "--no-config", "--python", sys.executable, "--seed", str(tmp)],
                env,
                on_line,
            )
            on_line(f"$ CMAKE_ARGS='{cmake_args}' uv pip install {LLAMACPP_REQUIREMENT}")
            await _run(
                # --no-config: our own pyproject overrides llama-cpp-python away (base install).
                [
                    uv,
                    "pip",
                    "install",
                    "--no-config",
                    "--python",
                    str(python),
                    LLAMACPP_REQUIREMENT,
                ],
                env,
                on_line,
            )
        else:
            await _run([sys.executable, "-m", "venv", str(tmp)], env, on_line)
            await _run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--progress-bar",
                    "off",
                    LLAMACPP_REQUIREMENT,
                ],
                env,
                on_line,
            )
        on_line("$ python -c 'import llama_cpp.server'")
        await _run([str(python), "-c", "import llama_cpp, llama_cpp.server"], env, on_line)
        (tmp / _MARKER).write_text(
            json.dumps({"requirement": LLAMACPP_REQUIREMENT, "cmake_args": cmake_args})
        )
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / "bin" / "python"
