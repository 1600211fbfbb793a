"""How much memory an engine needs, for the `budget` residency policy.

Known before the spawn, so a 40 GB GGUF evicts what it must *before* it starts: a
configured override; else the weights on disk (a model directory, a single GGUF file, a
Hub snapshot once downloaded) plus a KV/runtime margin. Once the engine runs, its
measured peak RSS (engine and children) replaces the guess.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil

from legal_assistant.config import Settings

# KV cache and runtime overhead on top of the weights (measured: the bundled 135M model
# takes ~110 MB at HTTP-up and ~290 MB after generating).
KV_MARGIN = 200 * 1024**2
_WEIGHT_PATTERNS = ("*.safetensors", "*.gguf", "*.bin", "*.npz", "*.pt", "*.pth")


def weights_size(model_arg: str) -> int | None:
    """Bytes of weights at `model_arg`: a directory (MLX, Hub snapshot) or one file (GGUF).
    None for what is not on disk (a Hub id the engine itself resolves)."""
    path = Path(model_arg)
    try:
        if path.is_file():
            return path.stat().st_size
        if not path.is_dir():
            return None
        total = 0
        for pattern in _WEIGHT_PATTERNS:
            # A Hub snapshot links to blobs: stat() follows the link to the real size.
            total += sum(f.stat().st_size for f in path.glob(pattern) if f.is_file())
        return total
    except OSError:
        return None


def estimate_bytes(
    settings: Settings,
    model_id: str,
    *,
    weights_bytes: int | None,
    peak_rss: int,
    measured: bool,
) -> int:
    """A configured override; else the measured peak (when `measured`); else weights
    plus margin."""
    override = settings.models.get(model_id)
    if override is not None and override.memory_gb is not None:
        return int(override.memory_gb * 1024**3)
    if measured and peak_rss:
        return peak_rss
    return int((weights_bytes or 0) * 1.2) + KV_MARGIN


async def memory_available(need: int, wait_s: float = 10.0) -> None:
    """After an eviction the kernel gets the memory back once the process is reaped;
    wait (bounded) until it shows as available before loading the next model."""
    deadline = time.monotonic() + wait_s
    # No event exists for "the kernel has memory again": a short bounded poll it is.
    while psutil.virtual_memory().available < need and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
