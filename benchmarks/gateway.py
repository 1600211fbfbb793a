"""Gateway overhead: each protocol of a real `legal-assistant serve` — OpenAI `/v1`,
Anthropic `/v1/messages`, Ollama `/ollama/api/chat` — vs OpenAI straight to the same
engine process on its own port, side by side in one run.

For the fake engine (fixed high token rate: every protocol) and for the real MLX engine
(bundled SmolLM2: OpenAI only unless `--mlx-protocols`): streamed tokens/s (rotating
runs, median), and the time to first token of a warm engine (interleaved requests,
p50/p99; protocol minus direct). The first token is the first *text* each protocol
carries (a `content_block_delta`, an NDJSON line with content), not the Anthropic
`message_start` the gateway sends before asking the engine. Then the backend's resident
memory at idle.

    uv run python benchmarks/gateway.py [--runs 7] [--ttft 60] [--mlx-protocols openai]
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        # No background warm-up of the default model: the runs measure the engine they start.
        LEGAL_ASSISTANT_WARM_DEFAULT="false",
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


def _openai_text(line: str) -> bool:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return False
    return any((c.get("delta") or {}).get("content") for c in json.loads(line[6:])["choices"])


def _anthropic_text(line: str) -> bool:
    return line == "event: content_block_delta"


def _ollama_text(line: str) -> bool:
    return bool(line) and bool(json.loads(line).get("message", {}).get("content"))


@dataclass(frozen=True)
class Protocol:
    """How one protocol asks for a streamed answer, and which of its lines carry text."""

    name: str
    path: str
    is_text: Callable[[str], bool]
    body: Callable[[str, str, int], dict[str, Any]]  # (model, prompt, max_tokens) → body


def _openai_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    return {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0,
            "stream": True}  # fmt: skip


def _ollama_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    options = {"num_predict": max_tokens, "temperature": 0.0}
    return {"model": model, "messages": messages, "options": options, "stream": True}


PROTOCOLS = {
    "openai": Protocol("openai", "/v1/chat/completions", _openai_text, _openai_body),
    # Same body shape: max_tokens, temperature, messages, stream.
    "anthropic": Protocol("anthropic", "/v1/messages", _anthropic_text, _openai_body),
    "ollama": Protocol("ollama", "/ollama/api/chat", _ollama_text, _ollama_body),
}


@dataclass(frozen=True)
class Side:
    name: str  # "direct" or a protocol
    base: str
    model: str
    protocol: Protocol


def stream_run(client: httpx.Client, side: Side, prompt: str, max_tokens: int) -> tuple[int, float]:
    """One streamed answer: (lines carrying text, seconds from request to the end)."""
    n = 0
    t0 = time.perf_counter()
    body = side.protocol.body(side.model, prompt, max_tokens)
    with client.stream("POST", f"{side.base}{side.protocol.path}", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if side.protocol.is_text(line):
                n += 1
    return n, time.perf_counter() - t0


def first_token(client: httpx.Client, side: Side) -> float:
    """Seconds from sending a 1-token streamed request to its first line with text."""
    body = side.protocol.body(side.model, SHORT_PROMPT, 1)
    t0 = time.perf_counter()
    with client.stream("POST", f"{side.base}{side.protocol.path}", json=body) as resp:
        resp.raise_for_status()
        lines = resp.iter_lines()
        elapsed = None
        for line in lines:
            if side.protocol.is_text(line):
                elapsed = time.perf_counter() - t0
                break
        for _ in lines:  # drain, so every side ends the request the same way
            pass
    if elapsed is None:
        raise RuntimeError(f"{side.name}: no line with text")
    return elapsed


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


@dataclass
class Result:
    label: str
    tps: dict[str, list[float]]  # side → tokens/s per run ("direct" first)
    ttft: dict[str, list[float]]  # side → seconds per request
    tokens: int


def measure(
    label: str,
    backend: Backend,
    model_id: str,
    prompt: str,
    max_tokens: int,
    runs: int,
    ttft_n: int,
    protocols: list[str],
) -> Result:
    with httpx.Client(trust_env=False, timeout=None) as client:
        direct, served = start_engine(client, backend, model_id)
        sides = [Side("direct", direct, served, PROTOCOLS["openai"])]
        sides += [Side(p, backend.url, model_id, PROTOCOLS[p]) for p in protocols]
        # Warm every path (connection pool, first-request costs) before measuring.
        for side in sides:
            stream_run(client, side, prompt, max_tokens)
            first_token(client, side)
        tps: dict[str, list[float]] = {s.name: [] for s in sides}
        counts: set[int] = set()
        for i in range(runs):
            # Rotate who goes first, so drift on a noisy machine hits every side.
            for side in sides[i % len(sides) :] + sides[: i % len(sides)]:
                n, secs = stream_run(client, side, prompt, max_tokens)
                counts.add(n)
                tps[side.name].append(n / secs)
            print(
                f"  {label} run {i + 1}: "
                + "   ".join(f"{name} {v[-1]:8.1f} tok/s" for name, v in tps.items()),
                flush=True,
            )
        ttft: dict[str, list[float]] = {s.name: [] for s in sides}
        for i in range(ttft_n):
            for side in sides[i % len(sides) :] + sides[: i % len(sides)]:
                ttft[side.name].append(first_token(client, side))
        print(
            f"  {label} first token p50: "
            + "   ".join(f"{n} {statistics.median(v) * 1e3:.2f} ms" for n, v in ttft.items()),
            flush=True,
        )
    return Result(label, tps, ttft, max(counts))


def idle_rss(backend: Backend, settle_s: float) -> int:
    time.sleep(settle_s)  # "after a few seconds of idle" is the measure itself
    return int(psutil.Process(backend.pid).memory_info().rss)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def table(results: list[Result], rss_idle: int, rss_after: int) -> str:
    head = f"{'measure':<44} {'direct':>11} {'gateway':>11} {'ratio':>10}   goal"
    lines = [head, "-" * len(head)]
    for r in results:
        d_tps, d_ttft = r.tps["direct"], r.ttft["direct"]
        for name in (n for n in r.tps if n != "direct"):
            g_tps, g_ttft = r.tps[name], r.ttft[name]
            tag = f"{r.label} {name}"
            d, g = statistics.median(d_tps), statistics.median(g_tps)
            ratio = g / d
            lines.append(
                f"{tag + f' tokens/s ({r.tokens} tok, p50)':<44} {d:>11.1f} {g:>11.1f} "
                f"{ratio:>9.3f}x   ≥ 0.98x {verdict(ratio >= 0.98)}"
            )
            d50, g50 = statistics.median(d_ttft) * 1e3, statistics.median(g_ttft) * 1e3
            added50 = g50 - d50
            lines.append(
                f"{tag + f' first token p50 (n={len(d_ttft)})':<44} {d50:>9.2f}ms "
                f"{g50:>9.2f}ms {added50:>+8.2f}ms   ≤ +5 ms {verdict(added50 <= 5.0)}"
            )
            d99, g99 = p99(d_ttft) * 1e3, p99(g_ttft) * 1e3
            lines.append(
                f"{tag + f' first token p99 (n={len(d_ttft)})':<44} {d99:>9.2f}ms "
                f"{g99:>9.2f}ms {g99 - d99:>+8.2f}ms   (reported)"
            )
            # Paired estimates (run i of one side against run i of direct, taken back to
            # back): less sensitive to a machine whose load drifts during the benchmark.
            paired_tps = statistics.median(g / d for d, g in zip(d_tps, g_tps, strict=True))
            paired_ttft = statistics.median(
                (g - d) * 1e3 for d, g in zip(d_ttft, g_ttft, strict=True)
            )
            lines.append(
                f"{tag + ' tokens/s, paired median ratio':<44} {'-':>11} {'-':>11} "
                f"{paired_tps:>9.3f}x   (reported)"
            )
            lines.append(
                f"{tag + ' first token added, paired median':<44} {'-':>11} {'-':>11} "
                f"{paired_ttft:>+8.2f}ms   (reported)"
            )
    mb = 1024 * 1024
    lines.append(
        f"{'backend RSS, idle after start-up':<44} {'-':>11} {rss_idle / mb:>9.1f}MB "
        f"{'-':>10}   ≤ 150 MB {verdict(rss_idle <= 150 * mb)}"
    )
    lines.append(
        f"{'backend RSS, idle after the runs':<44} {'-':>11} {rss_after / mb:>9.1f}MB "
        f"{'-':>10}   (reported)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7, help="throughput runs per side")
    parser.add_argument("--ttft", type=int, default=60, help="first-token requests per side")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before RSS")
    parser.add_argument(
        "--fake-protocols", default="openai,anthropic,ollama", help="protocols on the fake engine"
    )
    parser.add_argument("--mlx-protocols", default="openai", help="protocols on MLX ('' = skip)")
    args = parser.parse_args()
    fake_protocols = [p for p in args.fake_protocols.split(",") if p]
    mlx_protocols = [p for p in args.mlx_protocols.split(",") if p]
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
                "fake",
                backend,
                f"mlx:{fake_dir}",
                SHORT_PROMPT,
                FAKE_TOKENS,
                args.runs,
                args.ttft,
                fake_protocols,
            )
        )
    rss_after = rss_idle
    if mlx_protocols:
        print(f"real MLX engine ({BUNDLED}, {MLX_TOKENS} tokens)", flush=True)
        with serve() as backend:
            results.append(
                measure(
                    "mlx",
                    backend,
                    BUNDLED,
                    LONG_PROMPT,
                    MLX_TOKENS,
                    args.runs,
                    args.ttft,
                    mlx_protocols,
                )
            )
            rss_after = idle_rss(backend, args.idle)
    shutil.rmtree(fake_dir.parent, ignore_errors=True)
    print()
    print("Each protocol vs OpenAI direct to the same engine process (legal-assistant serve)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average at the end: {load}")
    print(table(results, rss_idle, rss_after))


if __name__ == "__main__":
    main()
