"""The same prompt on `mlx:smollm2-135m` and `llamacpp:smollm2-135m` through the backend:
cold start, time to first token, decode tokens/s and engine RSS.

    uv run python benchmarks/engines.py [--runs 3] [--tokens 64]

Runs a real `legal-assistant serve` (temp data dir) and talks to it over HTTP, so the
numbers include everything a user waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import free_port

PROMPT = "Qu'est-ce qu'un contrat de bail ? Réponds en trois phrases."
MODELS = ("mlx:smollm2-135m", "llamacpp:smollm2-135m")


def start_backend() -> tuple[subprocess.Popen[bytes], str]:
    data = Path(tempfile.mkdtemp(prefix="la-bench-engines-"))
    port = free_port()
    env = dict(
        os.environ,
        LEGAL_ASSISTANT_DATA_DIR=str(data),
        LEGAL_ASSISTANT_PORT=str(port),
        HF_HOME=str(data / "hf"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "legal_assistant.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("backend did not start")


def cold_start(client: httpx.Client, url: str, model: str) -> float:
    client.post(f"{url}/api/settings/mlx/stop")  # swap policy: stop everything first
    for e in client.get(f"{url}/api/engines").json()["engines"]:
        if e["state"] != "stopped":
            client.post(f"{url}/api/engines/{e['id']}/stop")
    t0 = time.perf_counter()
    resp = client.post(f"{url}/api/engines/start", json={"model_id": model}, timeout=300)
    resp.raise_for_status()
    return time.perf_counter() - t0


def generate(client: httpx.Client, url: str, model: str, tokens: int) -> tuple[float, float]:
    """(time to first token, decode tokens/s) for one streamed answer."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    first = last = 0.0
    n = 0
    with client.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    return first - t0, (n - 1) / (last - first) if n > 1 and last > first else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    proc, url = start_backend()
    results: dict[str, dict[str, list[float]]] = {
        m: {"cold": [], "ttft": [], "tps": [], "rss": []} for m in MODELS
    }
    try:
        with httpx.Client(trust_env=False) as client:
            for i in range(args.runs):
                order = MODELS if i % 2 == 0 else tuple(reversed(MODELS))
                for model in order:
                    r = results[model]
                    r["cold"].append(cold_start(client, url, model))
                    generate(client, url, model, 4)  # warm the prompt cache path
                    ttft, tps = generate(client, url, model, args.tokens)
                    r["ttft"].append(ttft)
                    r["tps"].append(tps)
                    engine = next(
                        e
                        for e in client.get(f"{url}/api/engines").json()["engines"]
                        if e["model"] == model
                    )
                    r["rss"].append((engine["rss_bytes"] or 0) / 1024**2)
                    print(
                        f"run {i + 1} {model}: cold {r['cold'][-1]:.2f}s ttft "
                        f"{ttft * 1000:.0f}ms {tps:.1f} tok/s rss {r['rss'][-1]:.0f}MB",
                        flush=True,
                    )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    med = {m: {k: statistics.median(v) for k, v in r.items()} for m, r in results.items()}
    a, b = MODELS
    print()
    print(
        "Same prompt through the backend (bundled SmolLM2 135M; medians of "
        f"{args.runs} alternating runs, {args.tokens} tokens)"
    )
    print(f"{'measure':<24} {a:>22} {b:>24} {'llamacpp/mlx':>13}")
    rows = [
        ("cold start (s)", "cold", "{:.2f}"),
        ("TTFT warm (ms)", "ttft", "{:.0f}"),
        ("decode (tok/s)", "tps", "{:.1f}"),
        ("engine RSS (MB)", "rss", "{:.0f}"),
    ]
    for label, key, fmt in rows:
        x, y = med[a][key], med[b][key]
        scale = 1000 if key == "ttft" else 1
        print(
            f"{label:<24} {fmt.format(x * scale):>22} {fmt.format(y * scale):>24} "
            f"{(y / x if x else 0):>12.2f}x"
        )


if __name__ == "__main__":
    main()
