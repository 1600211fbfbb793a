"""Shared helpers for the benchmarks: a raw engine spawned by hand, polled as fast as
possible — the baseline the supervisor is compared with."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from legal_assistant.config import Settings
from legal_assistant.runtime.bundled import ensure_bundled_model
from legal_assistant.runtime.engines.mlx import MLXSpec

PROMPT = "Qu'est-ce qu'un bail ?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(data_dir: Path | None = None) -> Settings:
    data = data_dir or Path(tempfile.mkdtemp(prefix="la-bench-"))
    (data / "hf" / "hub").mkdir(parents=True, exist_ok=True)
    return Settings(data_dir=data, hf_home=data / "hf", load_timeout_s=120)


def models() -> tuple[Path, Path]:
    """The bundled model and a second copy of it at another path (a different model id)."""
    first = ensure_bundled_model()
    second = first.parent / "bench-copy"
    if not (second / "config.json").exists():
        import shutil

        shutil.copytree(first, second)
    return first, second


def first_token_request(client: httpx.Client, port: int, model: str) -> None:
    """The 'first token' both sides measure: a 1-token chat completion of PROMPT."""
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 1,
            "temperature": 0.0,
        }
    )
    resp = client.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=None,
    )
    resp.raise_for_status()


def raw_spawn(model: Path, port: int, hf_home: Path) -> subprocess.Popen[bytes]:
    # The environment a supervised MLX engine gets (its BLAS preload, no kernel JIT on
    # Linux), so the two sides differ only by the supervisor.
    spec_env = MLXSpec().launch(str(model), "127.0.0.1", port, settings()).env
    env = dict(os.environ, HF_HOME=str(hf_home))
    env.update({k: v for k, v in spec_env.items() if k in ("LD_PRELOAD", "MLX_DISABLE_COMPILE")})
    cmd = [sys.executable, "-m", "mlx_lm", "server", "--model", str(model), "--port", str(port)]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def raw_until_first_token(client: httpx.Client, port: int, model: Path) -> None:
    """Poll as fast as possible: retry the request the moment the port refuses."""
    while True:
        try:
            first_token_request(client, port, str(model))
            return
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            time.sleep(0.005)


def raw_stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()


def table(title: str, rows: list[tuple[str, list[float], list[float]]]) -> str:
    lines = [
        title,
        f"{'measure':<34} {'baseline p50':>12} {'supervised p50':>15} {'ratio':>7}   runs",
    ]
    for name, base, sup in rows:
        b, s = statistics.median(base), statistics.median(sup)
        lines.append(f"{name:<34} {b:>11.3f}s {s:>14.3f}s {s / b:>6.3f}x   {len(base)}+{len(sup)}")
    return "\n".join(lines)


def alternate(
    runs: int, raw: Callable[[], float], supervised: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Run both sides `runs` times, alternating which goes first so drift on a noisy
    machine hits both; print each pair as it comes."""
    base: list[float] = []
    sup: list[float] = []
    for i in range(runs):
        for side in ("raw", "sup") if i % 2 == 0 else ("sup", "raw"):
            if side == "raw":
                base.append(raw())
            else:
                sup.append(supervised())
        print(f"run {i + 1}: raw {base[-1]:.3f}s  supervised {sup[-1]:.3f}s", flush=True)
    return base, sup
