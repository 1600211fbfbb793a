"""A fast BLAS for MLX on Linux, and the bundled model variant that follows from it.

Why: MLX's Linux CPU wheel (`mlx[cpu]`) links a reference (netlib) BLAS that it bundles
(`mlx_cpu.libs/libblas-*.so.3`). Dense float32 matmuls through it are slow, and MLX's 4-bit
CPU kernels are no faster. An optimized `libblas.so.3` (OpenBLAS, BLIS) preloaded into the
engine process only (`LD_PRELOAD`) is taken by the dynamic linker ahead of the bundled one;
with it, the bundled model dequantized to float32 processes prompts ~15-25x faster.

numpy's wheel carries OpenBLAS too, but with renamed 64-bit-integer symbols
(`scipy_cblas_sgemm64_`): not a drop-in, so it is not a candidate.

On macOS MLX runs on Metal: nothing here applies, the 4-bit variant stays.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from legal_assistant.runtime.bundled import Variant

# What to install when no fast BLAS is found (Debian/Ubuntu; other distributions below).
INSTALL_HINT = (
    "sudo apt-get install libopenblas0-pthread   "
    "(Fedora: dnf install openblas-threads; Arch: pacman -S openblas)"
)

# Debian/Ubuntu install OpenBLAS and BLIS as alternatives of libblas.so.3 under these
# directories; the pthread build first (the OpenMP one can fight MLX's own threads).
_DEBIAN_FLAVOURS = (
    "openblas-pthread",
    "openblas-openmp",
    "openblas-serial",
    "blis-pthread",
    "blis-openmp",
    "blis-serial",
)
# Other distributions ship one library with both the Fortran BLAS and CBLAS symbols.
_OTHER_NAMES = ("libopenblasp.so.0", "libopenblas.so.0", "libopenblas.so", "libblis.so.4")
# Symbols MLX's CPU backend calls (matmul) and the Fortran name LAPACK needs.
_REQUIRED_SYMBOLS = ("cblas_sgemm", "sgemm_")


@dataclass(frozen=True, slots=True)
class BlasChoice:
    """What MLX engines get on this machine."""

    library: Path | None  # preloaded into the engine; None = MLX's own (or Metal)
    variant: Variant  # which conversion of the bundled model runs
    reason: str  # one line a person can act on

    @property
    def fast(self) -> bool:
        return self.library is not None


def multiarch_triplet() -> str:
    """Debian's multiarch directory name (x86_64-linux-gnu, aarch64-linux-gnu...)."""
    triplet = sysconfig.get_config_var("MULTIARCH")
    if isinstance(triplet, str) and triplet:
        return triplet
    return f"{platform.machine()}-linux-gnu"


def candidates() -> list[Path]:
    """Where an optimized BLAS usually lives, most likely first."""
    triplet = multiarch_triplet()
    found = [Path(f"/usr/lib/{triplet}/{flavour}/libblas.so.3") for flavour in _DEBIAN_FLAVOURS]
    dirs = [
        Path(f"/usr/lib/{triplet}"),
        Path("/usr/lib64"),
        Path("/usr/lib"),
        Path("/usr/local/lib"),
    ]
    conda = os.environ.get("CONDA_PREFIX")
    if conda:
        dirs.insert(0, Path(conda) / "lib")
    found += [d / name for d in dirs for name in _OTHER_NAMES]
    # Debian's alternatives link: only worth it when it points at an optimized library.
    generic = Path(f"/usr/lib/{triplet}/libblas.so.3")
    if any(k in str(generic.resolve()) for k in ("openblas", "blis", "mkl")):
        found.append(generic)
    return found


@functools.lru_cache(maxsize=16)
def usable(library: Path) -> bool:
    """True when `library` loads and exports what MLX calls. Checked in a throw-away
    process: loading OpenBLAS starts its thread pool, which the backend does not need."""
    code = (
        "import ctypes, sys\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        f"[getattr(lib, s) for s in {_REQUIRED_SYMBOLS!r}]\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(library)],
            capture_output=True,
            timeout=20,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_fast_blas(setting: str = "auto") -> Path | None:
    """The optimized BLAS to preload into MLX engines, or None.

    `setting` (LEGAL_ASSISTANT_MLX_BLAS): "auto" searches the usual places, "off" never
    preloads, anything else is the path of a library to use."""
    if sys.platform != "linux" or setting == "off":
        return None
    if setting != "auto":
        path = Path(setting).expanduser()
        return path if path.is_file() and usable(path) else None
    for path in candidates():
        if path.is_file() and usable(path):
            return path
    return None


def choose(setting: str = "auto") -> BlasChoice:
    """The BLAS and bundled-model variant for this machine, with the reason."""
    if sys.platform == "darwin":
        return BlasChoice(None, "4bit", "macOS: MLX runs on Metal (4-bit model)")
    if sys.platform != "linux":
        return BlasChoice(None, "4bit", f"{sys.platform}: MLX's own BLAS (4-bit model)")
    library = find_fast_blas(setting)
    if library is not None:
        return BlasChoice(library, "float32", f"optimized BLAS {library} (float32 model)")
    if setting == "off":
        return BlasChoice(None, "4bit", "fast BLAS disabled (LEGAL_ASSISTANT_MLX_BLAS=off)")
    if setting != "auto":
        return BlasChoice(
            None, "4bit", f"LEGAL_ASSISTANT_MLX_BLAS={setting} is not a usable BLAS library"
        )
    return BlasChoice(
        None,
        "4bit",
        "only MLX's reference BLAS: prompts run ~20x slower. Install: " + INSTALL_HINT,
    )


def preload_env(library: Path | None, env: dict[str, str]) -> dict[str, str]:
    """`env` with `library` preloaded ahead of anything the engine already preloads."""
    if library is None:
        return env
    earlier = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = f"{library}:{earlier}" if earlier else str(library)
    return env
