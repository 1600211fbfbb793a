"""Gateway overhead: the OpenAI-compatible `/v1` gateway of a real `legal-assistant serve`
vs the same engine process hit directly on its own port, side by side in one run.

For the fake engine (fixed high token rate) and for the real MLX engine (bundled
SmolLM2): streamed tokens/s (alternating runs, median), and the time to first token of
a warm engine (interleaved requests, p50/p99; gateway minus direct). Then the backend's
resident memory at idle.

    uv run python benchmarks/gateway.py [--runs 7] [--ttft 60]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from _common import free_port

from legal_assistant.runtime.bundled import ensure_bundled_model

ROOT = Path(__file__).resolve().parents[1]
FAKE_ENGINE = ROOT / "tests" / "fakes" / "fake_engine.py"
BUNDLED = "mlx:smollm2-135m"
FAKE_TOKENS = 2000
FAKE_RATE = 2000.0
MLX_TOKENS = 64
LONG_PROMPT = "Write a long, detailed story about a lawyer who defends a baker in court."
SHORT_PROMPT = "Qu'est-ce qu'un bail ?"


@dataclass
class Backend:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def serve(mlx_command: list[str] | None = None) -> Iterator[Backend]:
    """`legal-assistant serve` in a subprocess (temp data dir), ready on /healthz."""
    tmp = Path(tempfile.mkdtemp(prefix="la-bench-gw-"))
    (tmp / "hf" / "hub").mkdir(parents=True)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        LEGAL_ASSISTANT_PORT=str(port),
        LEGAL_ASSISTANT_DATA_DIR=str(tmp / "data"),
        LEGAL_ASSISTANT_HF_HOME=str(tmp / "hf"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp / "no-config.toml"),
        LEGAL_ASSISTANT_OLLAMA_URL=f"http://127.0.0.1:{free_port()}",
        LEGAL_ASSISTANT_LOAD_TIMEOUT_S="120",
    )
    if mlx_command is not None:
        env["LEGAL_ASSISTANT_MLX_COMMAND"] = json.dumps(mlx_command)
    exe = Path(sys.executable).parent / "legal-assistant"
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp
        )
    backend = Backend(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 90
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited ({proc.returncode}):\n{log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{backend.url}/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve not healthy after 90 s:\n{log.read_text()}")
                time.sleep(0.05)
        yield backend
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def start_engine(client: httpx.Client, backend: Backend, model_id: str) -> tuple[str, str]:
    """Start `model_id` through the gateway; return (direct base URL, served model)."""
    resp = client.post(
        f"{backend.url}/v1/chat/completions",
        json={"model": model_id, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
    )
    resp.raise_for_status()
    engines = client.get(f"{backend.url}/api/engines").json()["engines"]
    engine = next(e for e in engines if e["model"] == model_id and e["state"] == "ready")
    return f"http://127.0.0.1:{engine['port']}", str(engine["served_model"])


def stream_run(
    client: httpx.Client, base: str, model: str, prompt: str, max_tokens: int
) -> tuple[int, float]:
    """One streamed chat completion: (content chunks, seconds from request to [DONE])."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
    }
    n = 0
    t0 = time.perf_counter()
    with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                if (choice.get("delta") or {}).get("content"):
                    n += 1
    return n, time.perf_counter() - t0


def first_token(client: httpx.Client, base: str, model: str) -> float:
    """Seconds from sending a 1-token streamed request to its first `data:` line."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": SHORT_PROMPT}],
        "max_tokens": 1,
        "temperature": 0.0,
        "stream": True,
    }
    t0 = time.perf_counter()
    with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        lines = resp.iter_lines()
        elapsed = None
        for line in lines:
            if line.startswith("data: "):
                elapsed = time.perf_counter() - t0
                break
        for _ in lines:  # drain, so both sides end the request the same way
            pass
    if elapsed is None:
        raise RuntimeError("no data line")
    return elapsed


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


@dataclass
class Result:
    label: str
    tps_direct: list[float]
    tps_gateway: list[float]
    ttft_direct: list[float]
    ttft_gateway: list[float]
    tokens: int


def measure(
    label: str,
    backend: Backend,
    model_id: str,
    prompt: str,
    max_tokens: int,
    runs: int,
    ttft_n: int,
) -> Result:
    with httpx.Client(trust_env=False, timeout=None) as client:
        direct, served = start_engine(client, backend, model_id)
        gateway = f"{backend.url}"
        sides = {"direct": (direct, served), "gateway": (gateway, model_id)}
        # Warm both paths (connection pool, first-request costs) before measuring.
        for base, model in sides.values():
            stream_run(client, base, model, prompt, max_tokens)
            first_token(client, base, model)
        tps: dict[str, list[float]] = {"direct": [], "gateway": []}
        counts: set[int] = set()
        for i in range(runs):
            order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
            for side in order:
                base, model = sides[side]
                n, secs = stream_run(client, base, model, prompt, max_tokens)
                counts.add(n)
                tps[side].append(n / secs)
            print(
                f"  {label} run {i + 1}: direct {tps['direct'][-1]:8.1f} tok/s   "
                f"gateway {tps['gateway'][-1]:8.1f} tok/s",
                flush=True,
            )
        ttft: dict[str, list[float]] = {"direct": [], "gateway": []}
        for i in range(ttft_n):
            order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
            for side in order:
                base, model = sides[side]
                ttft[side].append(first_token(client, base, model))
        print(
            f"  {label} first token: direct p50 {statistics.median(ttft['direct']) * 1e3:.2f} ms"
            f"   gateway p50 {statistics.median(ttft['gateway']) * 1e3:.2f} ms",
            flush=True,
        )
    return Result(
        label, tps["direct"], tps["gateway"], ttft["direct"], ttft["gateway"], max(counts)
    )


def idle_rss(backend: Backend, settle_s: float) -> int:
    time.sleep(settle_s)  # "after a few seconds of idle" is the measure itself
    return int(psutil.Process(backend.pid).memory_info().rss)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def table(results: list[Result], rss_idle: int, rss_after: int) -> str:
    head = f"{'measure':<38} {'direct':>11} {'gateway':>11} {'ratio':>10}   goal"
    lines = [head, "-" * len(head)]
    for r in results:
        d, g = statistics.median(r.tps_direct), statistics.median(r.tps_gateway)
        ratio = g / d
        lines.append(
            f"{r.label + f' tokens/s ({r.tokens} tok, p50)':<38} {d:>11.1f} {g:>11.1f} "
            f"{ratio:>9.3f}x   ≥ 0.98x {verdict(ratio >= 0.98)}"
        )
        d50, g50 = statistics.median(r.ttft_direct) * 1e3, statistics.median(r.ttft_gateway) * 1e3
        added50 = g50 - d50
        lines.append(
            f"{r.label + f' first token p50 (n={len(r.ttft_direct)})':<38} {d50:>9.2f}ms "
            f"{g50:>9.2f}ms {added50:>+8.2f}ms   ≤ +5 ms {verdict(added50 <= 5.0)}"
        )
        d99, g99 = p99(r.ttft_direct) * 1e3, p99(r.ttft_gateway) * 1e3
        lines.append(
            f"{r.label + f' first token p99 (n={len(r.ttft_direct)})':<38} {d99:>9.2f}ms "
            f"{g99:>9.2f}ms {g99 - d99:>+8.2f}ms   (reported)"
        )
        # Paired estimates (run i of one side against run i of the other, taken back to
        # back): less sensitive to a machine whose load drifts during the benchmark.
        paired_tps = statistics.median(
            g / d for d, g in zip(r.tps_direct, r.tps_gateway, strict=True)
        )
        paired_ttft = statistics.median(
            (g - d) * 1e3 for d, g in zip(r.ttft_direct, r.ttft_gateway, strict=True)
        )
        lines.append(
            f"{r.label + ' tokens/s, paired median ratio':<38} {'-':>11} {'-':>11} "
            f"{paired_tps:>9.3f}x   (reported)"
        )
        lines.append(
            f"{r.label + ' first token added, paired median':<38} {'-':>11} {'-':>11} "
            f"{paired_ttft:>+8.2f}ms   (reported)"
        )
    mb = 1024 * 1024
    lines.append(
        f"{'backend RSS, idle after start-up':<38} {'-':>11} {rss_idle / mb:>9.1f}MB "
        f"{'-':>10}   ≤ 150 MB {verdict(rss_idle <= 150 * mb)}"
    )
    lines.append(
        f"{'backend RSS, idle after the runs':<38} {'-':>11} {rss_after / mb:>9.1f}MB "
        f"{'-':>10}   (reported)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7, help="throughput runs per side")
    parser.add_argument("--ttft", type=int, default=60, help="first-token requests per side")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before RSS")
    args = parser.parse_args()
    ensure_bundled_model()  # convert once, outside any measurement

    results: list[Result] = []
    fake_dir = Path(tempfile.mkdtemp(prefix="la-bench-fake-")) / "fake-fast"
    fake_dir.mkdir()
    (fake_dir / "config.json").write_text(json.dumps({"model_type": "fake"}))
    (fake_dir / "fake_engine.json").write_text(
        json.dumps({"token_rate": FAKE_RATE, "tokens": FAKE_TOKENS})
    )
    print(f"fake engine ({FAKE_RATE:.0f} tok/s, {FAKE_TOKENS} tokens)", flush=True)
    with serve([sys.executable, str(FAKE_ENGINE)]) as backend:
        rss_idle = idle_rss(backend, args.idle)
        results.append(
            measure(
                "fake", backend, f"mlx:{fake_dir}", SHORT_PROMPT, FAKE_TOKENS, args.runs, args.ttft
            )
        )
    print(f"real MLX engine ({BUNDLED}, {MLX_TOKENS} tokens)", flush=True)
    with serve() as backend:
        results.append(
            measure("mlx", backend, BUNDLED, LONG_PROMPT, MLX_TOKENS, args.runs, args.ttft)
        )
        rss_after = idle_rss(backend, args.idle)
    shutil.rmtree(fake_dir.parent, ignore_errors=True)
    print()
    print("Gateway vs direct to the same engine process (legal-assistant serve, loopback)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average at the end: {load}")
    print(table(results, rss_idle, rss_after))


if __name__ == "__main__":
    main()
