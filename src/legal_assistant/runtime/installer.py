"""Managed engines: llama.cpp's own `llama-server`, built once from a pinned source.

Why build it ourselves: the C++ server batches requests continuously and saves/restores KV
slots, which llama-cpp-python's Python server does not; no package registry ships the
binary for every CPU, and llama.cpp's default native build crashes on CPUs with AMX
(`ggml_backend_amx_mul_mat`, FIELD-NOTES.md). The source is the llama-cpp-python sdist on
PyPI (MIT), which vendors llama.cpp with `tools/server`; its sha256 is pinned here and
checked against the download. Only the `llama-server` target is built (~5 min on 2 cores),
statically linked, with CPU-aware flags (AMX off; Metal on macOS).

The build happens in a temp dir next to the install and the result is renamed into place
only once the binary runs (`--version`): an interrupted or failed install leaves nothing
half-installed that the supervisor would try to run. A marker file records the pinned
version, so a new pin (or the old llama-cpp-python venv) is rebuilt by `make engines`, and
the same pin is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx

from legal_assistant.errors import LegalAssistantError

# The llama.cpp source: llama-cpp-python's sdist (it vendors llama.cpp with tools/server).
LLAMACPP_SOURCE = "llama-cpp-python"
LLAMACPP_VERSION = "0.3.36"
LLAMACPP_SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
PYPI_JSON = "https://pypi.org/pypi/llama-cpp-python/json"
INSTALL_HINT = "legal-assistant engines install llamacpp"
SERVER_BINARY = "llama-server"
_MARKER = "legal-assistant-engine.json"
_ENGINE = "llama-server"  # marker "engine": an old llama-cpp-python venv has none


def default_engines_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "legal-assistant" / "engines"


def engine_env(engines_dir: Path | None, kind: str) -> Path:
    return (engines_dir or default_engines_dir()) / kind


def llama_server_path(engines_dir: Path | None) -> Path:
    return engine_env(engines_dir, "llamacpp") / "bin" / SERVER_BINARY


def is_installed(engines_dir: Path | None, kind: str) -> bool:
    """The pinned llama-server is built and in place (an older pin is not installed)."""
    env = engine_env(engines_dir, kind)
    try:
        marker = json.loads((env / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("engine") == _ENGINE
        and marker.get("version") == LLAMACPP_VERSION
        and (env / "bin" / SERVER_BINARY).is_file()
    )


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def llamacpp_cmake_args() -> list[str]:
    """Portable x86 flags from what this CPU has; AMX always off (it segfaults on
    multi-token evals on the machines we run on). macOS keeps the default build (Metal)."""
    if sys.platform == "darwin":
        return ["-DGGML_METAL=ON"]
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
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
    return [*args, "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]


# Only the server; no network clients in it (models are local files), one static binary.
_COMMON_CMAKE_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
]


def _install_failed(detail: str, tail: list[str] | None = None) -> LegalAssistantError:
    return LegalAssistantError(
        "engine_not_installed",
        detail,
        message_fr="❌ L'installation de llama.cpp a échoué (voir les dernières lignes).",
        message_en="❌ Installing llama.cpp failed (see the last lines).",
        log_tail=tail or [],
    )


async def _run(argv: list[str], on_line: Callable[[str], None], cwd: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
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
        raise _install_failed(f"{' '.join(argv[:4])}... exited with {code}", tail[-15:])


def _build_tools() -> tuple[str, str]:
    cmake = shutil.which("cmake")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cmake and cxx:
        return cmake, cxx
    hint = (
        "xcode-select --install && brew install cmake"
        if sys.platform == "darwin"
        else "apt-get install cmake g++"
    )
    raise LegalAssistantError(
        "engine_not_installed",
        f"cmake and a C++ compiler are needed to build llama.cpp ({hint})",
        message_fr=f"❌ Pour compiler llama.cpp il faut cmake et un compilateur C++ : {hint}",
        message_en=f"❌ Building llama.cpp needs cmake and a C++ compiler: {hint}",
    )


async def _sdist_url(client: httpx.AsyncClient) -> tuple[str, str]:
    resp = await client.get(PYPI_JSON)
    resp.raise_for_status()
    files = resp.json()["releases"][LLAMACPP_VERSION]
    sdist = next(f for f in files if f["packagetype"] == "sdist")
    # The index answers relative URLs on some mirrors: resolve against the JSON's address.
    return urljoin(PYPI_JSON, sdist["url"]), str(sdist["digests"]["sha256"])


async def fetch_source(cache_dir: Path, on_line: Callable[[str], None]) -> Path:
    """The pinned sdist, downloaded once into `cache_dir` and checked against the pinned
    sha256 (and PyPI's own digest): a changed or truncated file is never built."""
    target = cache_dir / f"llama_cpp_python-{LLAMACPP_VERSION}.tar.gz"
    if await asyncio.to_thread(source_is_cached, target):
        return target
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), follow_redirects=True) as c:
            url, digest = await _sdist_url(c)
            if digest != LLAMACPP_SDIST_SHA256:
                raise _install_failed(f"PyPI's sha256 for {LLAMACPP_VERSION} is {digest}")
            on_line(f"downloading {url}")
            part = target.with_suffix(".part")
            h = hashlib.sha256()
            async with c.stream("GET", url) as resp:
                resp.raise_for_status()
                with part.open("wb") as f:
                    async for chunk in resp.aiter_bytes(1 << 20):
                        f.write(chunk)
                        h.update(chunk)
    except (httpx.HTTPError, KeyError, StopIteration, ValueError) as e:
        raise _install_failed(f"cannot download the llama.cpp source from PyPI: {e!r}") from e
    if h.hexdigest() != LLAMACPP_SDIST_SHA256:
        part.unlink(missing_ok=True)
        raise _install_failed(f"sha256 mismatch for the llama.cpp source: {h.hexdigest()}")
    os.replace(part, target)
    return target


def source_is_cached(target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.is_file() and _sha256(target) == LLAMACPP_SDIST_SHA256


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _extract_llamacpp(sdist: Path, into: Path) -> Path:
    """Extract only vendor/llama.cpp, refusing links and paths that leave `into`."""
    prefix = f"llama_cpp_python-{LLAMACPP_VERSION}/vendor/llama.cpp/"
    with tarfile.open(sdist, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tar.extractall(into, members=members, filter="data")
        else:
            for m in members:
                if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts:
                    raise _install_failed(f"unexpected entry in the source archive: {m.name}")
            tar.extractall(into, members=members)
    return into / prefix


async def install_llamacpp(
    engines_dir: Path | None, on_line: Callable[[str], None], *, force: bool = False
) -> Path:
    """Build and install `llama-server` (idempotent). Returns the binary's path."""
    target = engine_env(engines_dir, "llamacpp")
    if is_installed(engines_dir, "llamacpp") and not force:
        return target / "bin" / SERVER_BINARY
    cmake, _ = _build_tools()
    target.parent.mkdir(parents=True, exist_ok=True)
    sdist = await fetch_source(target.parent / ".sources", on_line)
    tmp = Path(tempfile.mkdtemp(prefix=".llamacpp.", dir=target.parent))
    try:
        on_line(f"extracting {sdist.name}")
        src = await asyncio.to_thread(_extract_llamacpp, sdist, tmp / "src")
        build = tmp / "build"
        flags = [*llamacpp_cmake_args(), *_COMMON_CMAKE_ARGS]
        on_line(f"$ cmake -S {src} -B {build} {' '.join(flags)}")
        await _run([cmake, "-S", str(src), "-B", str(build), *flags], on_line)
        jobs = str(os.cpu_count() or 2)
        on_line(f"$ cmake --build {build} --target {SERVER_BINARY} -j{jobs}")
        await _run(
            [cmake, "--build", str(build), "--config", "Release", "--target", SERVER_BINARY,
             "-j", jobs],
            on_line,
        )  # fmt: skip
        staged = tmp / "install"
        (staged / "bin").mkdir(parents=True)
        binary = staged / "bin" / SERVER_BINARY
        shutil.copy2(build / "bin" / SERVER_BINARY, binary)
        on_line(f"$ {binary} --version")
        await _run([str(binary), "--version"], on_line)  # proves it runs on this CPU
        (staged / _MARKER).write_text(
            json.dumps(
                {
                    "engine": _ENGINE,
                    "source": LLAMACPP_SOURCE,
                    "version": LLAMACPP_VERSION,
                    "sha256": LLAMACPP_SDIST_SHA256,
                    "cmake_args": flags,
                }
            )
        )
        if target.exists():
            shutil.rmtree(target)  # the previous pin, or the old llama-cpp-python venv
        os.rename(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "bin" / SERVER_BINARY
